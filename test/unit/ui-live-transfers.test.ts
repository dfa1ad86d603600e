// What the Live screen shows per transfer: HTTP rows without TFTP's block and resend columns,
// a rate (hence an ETA) for publishers that report none, finished transfers with their rate,
// how far a short one got, and a firmware size probe worded as the normal step it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceHost } from '../../main/host/service-host.js';
import { defaultServeConfig } from '../../main/host/config.js';
import { transferRecordFromEvent } from '../../main/api/api.js';
import { blockLabel, recordRate, recordReason, recordSize, resentLabel } from '../../renderer/src/lib/transfer-view.js';
import { etaSeconds, formatBytes } from '../../renderer/src/lib/format.js';

test('an HTTP row shows no TFTP block, window or resend figures; a TFTP row does', () => {
  assert.equal(blockLabel({ protocol: 'http' }), '–');
  assert.equal(resentLabel({ protocol: 'http', retransmits: 0 }), '–');
  assert.equal(blockLabel({ protocol: 'tftp', blksize: 1468, windowsize: 4 }), '1468 / 4');
  assert.equal(blockLabel({ protocol: 'tftp' }), '512 / 1', 'RFC 1350 defaults when nothing was negotiated');
  assert.equal(resentLabel({ protocol: 'tftp', retransmits: 3 }), '3');
});

test('a transfer whose publisher reports no rate (a file read from inside an ISO) gets its average rate, so an ETA', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bb-live-'));
  try {
    const host = new ServiceHost({ config: defaultServeConfig(dir) });
    const t0 = 1_700_000_000_000;
    const base = { transferId: 'library-1', ip: '192.0.2.50', file: '/library/e2/iso/casper/initrd', size: 10_000_000 };
    host.bus.publishAt('http.start', t0, base);
    host.bus.publishAt('http.progress', t0 + 2000, { ...base, bytes: 4_000_000 });
    const [row] = host.activeTransfers();
    assert.equal(row!.rate, 2_000_000);
    assert.equal(etaSeconds(row!), 3);
    // A publisher's own figure wins.
    host.bus.publishAt('http.progress', t0 + 3000, { ...base, bytes: 5_000_000, rate: 900_000 });
    assert.equal(host.activeTransfers()[0]!.rate, 900_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('finished transfers: a rate, the byte count of one that stopped early, and a size probe that is no failure', () => {
  const done = transferRecordFromEvent({
    type: 'http.done',
    time: 10_000,
    transferId: 'r.http-1',
    file: 'vmlinuz',
    bytes: 8_000_000,
    size: 8_000_000,
    durationMs: 2000,
  })!;
  assert.equal(recordRate(done), 4_000_000);
  assert.equal(recordSize(done), formatBytes(8_000_000));
  const short = transferRecordFromEvent({
    type: 'http.failed',
    time: 10_000,
    transferId: 'r.http-2',
    file: 'data.iso',
    bytes: 4096,
    size: 376_832,
    durationMs: 100,
    reason: 'client closed the connection',
  })!;
  assert.equal(short.outcome, 'failed');
  assert.equal(recordSize(short), `${formatBytes(4096)} of ${formatBytes(376_832)}`);
  // EDK2 asks the size with tsize, then stops with ERROR 8 "User aborted the transfer".
  const probe = transferRecordFromEvent({
    type: 'tftp.probe',
    time: 10_000,
    transferId: 'r.tftp-1',
    file: 'bootbench/snponly.efi',
    bytes: 0,
    size: 230_000,
    errorCode: 8,
    reason: 'User aborted the transfer.',
  })!;
  assert.equal(probe.outcome, 'probe');
  assert.doesNotMatch(recordReason(probe), /abort/i);
  assert.match(recordReason(probe), /asked the size first/);
  assert.equal(recordSize(probe), formatBytes(230_000));
  assert.equal(recordRate({ bytes: 0, durationMs: 5 }), 0, 'no rate for nothing sent');
});
