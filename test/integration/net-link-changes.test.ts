// What a scoped socket survives (issue 9, NIC scoping): the chosen NIC going down and
// coming back, and what it does not: the NIC being re-created (USB replug), which is why
// watchInterface reports reopenSockets. Namespaces made here; nothing leaves them.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, netnsUnavailableReason, waitFor, collectJsonLines } from '../helpers/netns.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runner = join(root, 'test', 'integration', 'net-scoped-runner.ts');
const skip = netnsUnavailableReason();

type Line = Record<string, any>;

describe('scoped socket across link changes', { skip }, () => {
  const lab = new Lab('bblink');
  let srv = '';
  let client = '';
  let server: { child: ChildProcess; lines: Line[] } | undefined;

  const ask = (payload: string): Line => {
    const out = lab.exec(client, process.execPath, ['--import', 'tsx', runner, 'client', 'eth0', '67', payload, '68', '1200'], { timeoutMs: 30_000 });
    return JSON.parse(out.trim().split('\n').at(-1)!);
  };
  const answered = (result: Line, payload: string) => result.received.some((m: Line) => m.payload === `answer:${payload}`);

  before(async () => {
    srv = lab.namespace('s');
    client = lab.namespace('c');
    lab.veth(srv, 'nic-a', '192.0.2.1/24', client, 'eth0', '192.0.2.10/24');
    const child = lab.spawn(srv, process.execPath, ['--import', 'tsx', runner, 'server', 'nic-a', '67', '68'], { cwd: root });
    server = { child, lines: collectJsonLines(child).lines };
    await waitFor(() => server!.lines.some((l) => l.event === 'ready') || child.exitCode !== null, 20_000, 'server ready');
    assert.ok(
      server.lines.some((l) => l.event === 'ready'),
      'server did not start',
    );
  });
  after(() => lab.destroy());

  test('link down: no answer; link up again: the same socket answers', async () => {
    assert.ok(answered(ask('before'), 'before'), 'no answer before the link change');
    lab.exec(srv, 'ip', ['link', 'set', 'nic-a', 'down']);
    // The client's end loses carrier too; its send may fail, which is fine.
    const during = ask('during');
    assert.ok(!answered(during, 'during'));
    lab.exec(srv, 'ip', ['link', 'set', 'nic-a', 'up']);
    await waitFor(() => lab.exec(srv, 'cat', ['/sys/class/net/nic-a/operstate']).trim() === 'up', 5000, 'nic-a up');
    assert.ok(answered(ask('after'), 'after'), `no answer after the link came back: ${JSON.stringify(server!.lines)}`);
    assert.equal(server!.child.exitCode, null, 'server runner died');
  });

  test('NIC re-created (new ifindex): the old socket is deaf, so the host must reopen', async () => {
    lab.exec(srv, 'ip', ['link', 'delete', 'nic-a']);
    lab.veth(srv, 'nic-a', '192.0.2.1/24', client, 'eth0', '192.0.2.10/24');
    await waitFor(() => lab.exec(srv, 'cat', ['/sys/class/net/nic-a/operstate']).trim() === 'up', 5000, 'new nic-a up');
    assert.ok(!answered(ask('replugged'), 'replugged'), 'the old socket still answers: reopenSockets would be unnecessary');
    // A fresh socket on the new NIC works.
    const fresh = lab.spawn(srv, process.execPath, ['--import', 'tsx', runner, 'server', 'nic-a', '67', '68'], { cwd: root });
    const lines = collectJsonLines(fresh).lines;
    // The old socket (other NIC index) does not collide with the new one on port 67.
    await waitFor(() => lines.some((l) => l.event === 'ready') || fresh.exitCode !== null, 20_000, 'fresh server ready');
    assert.ok(answered(ask('reopened'), 'reopened'));
    fresh.kill();
  });
});
