// Issue 9 item 1, the server loops: the real DhcpService (proxy and full DHCP, ports 67 and
// 4011) and TftpServer (request port and live transfer ports) receive mutated real packets
// over loopback, inside a namespace of their own (no DHCP server in the host namespace),
// and must keep answering good packets: 0 crashes, 0 unhandled rejections, no internal
// errors, transfers started by junk end by themselves, heap flat.
// CI: 20,000 packets. BOOTBENCH_LONG=1: 1,000,000 (BOOTBENCH_FUZZ_PACKETS=N overrides).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Lab, netnsUnavailableReason } from '../helpers/netns.js';
import { PROJECT_ROOT } from '../helpers/serve-process.js';

const PACKETS = Number(process.env.BOOTBENCH_FUZZ_PACKETS ?? (process.env.BOOTBENCH_LONG === '1' ? 1_000_000 : 20_000));
const skip = netnsUnavailableReason();
const lab = new Lab('bbfz');
after(() => lab.destroy());

test(`server loops survive ${PACKETS} mutated packets and keep answering`, { skip, timeout: Math.max(120_000, PACKETS * 2) }, () => {
  const ns = lab.namespace('f');
  const out = lab.exec(ns, process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'test', 'reliability', 'fuzz-loops-runner.ts'), String(PACKETS)], {
    timeoutMs: Math.max(110_000, PACKETS * 2),
  });
  const result = JSON.parse(out.trim().split('\n').at(-1)!);
  console.log(`loop fuzz: ${JSON.stringify({ ...result, sampleErrors: undefined })}`);
  assert.equal(result.fatal, undefined, result.fatal);
  assert.deepEqual(result.crashes, [], 'uncaught exceptions or unhandled rejections (last packets saved in test/fixtures/fuzz/)');
  assert.deepEqual(result.failures, []);
  assert.equal(result.internalErrorCount, 0, `internal errors: ${result.internalErrors.join('\n')}`);
  assert.equal(result.checks, Math.floor(PACKETS / 400), 'every liveness check ran');
  assert.equal(result.activeTransfersAtEnd, 0, 'transfers started by junk must end by themselves');
  // Junk must reach past the decoders: transfers started and real decisions taken.
  assert.ok(result.events['tftp.start'] > result.checks, 'fuzzed requests started transfers');
  assert.ok(result.events['dhcp.ignored'] > 0 && result.events['pxe.ack'] > result.checks);
  // Flat memory: what the heap holds after the first fifth stays within a few MiB.
  assert.ok(result.heapEndMiB - result.heapAfterWarmupMiB < 4, `heap grew from ${result.heapAfterWarmupMiB.toFixed(1)} to ${result.heapEndMiB.toFixed(1)} MiB`);
});
