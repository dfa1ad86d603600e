// The words a technician reads when a port cannot be opened, and the /proc lookup
// that names the process in the way.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import { explainBindFailure, explainDeviceBindFailure, explainNodeBindError, PortBindError, DeviceBindError } from '../../main/net/bind-errors.js';
import { findPortOwner, findPortOwners, parseProcNetTable, describePortOwners } from '../../main/net/port-owner.js';

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** An IPv4 address as /proc/net prints it on this machine. */
const procHex = (address: string) => {
  const bytes = address.split('.').map(Number);
  return Buffer.from(isLittleEndian ? bytes.reverse() : bytes)
    .toString('hex')
    .toUpperCase();
};

describe('permission errors', () => {
  test('Linux: port, service, cause, and the setcap fix with the node binary', () => {
    const error = explainBindFailure({ protocol: 'udp', port: 67, code: 'EACCES', platform: 'linux', unprivilegedPortStart: 1024 });
    assert.ok(error instanceof PortBindError);
    assert.equal(error.port, 67);
    assert.equal(error.code, 'EACCES');
    assert.equal(error.reason, 'permission');
    assert.match(
      error.message,
      /^Cannot open UDP port 67 \(DHCP \/ Proxy DHCP server\): ports below 1024 \(net\.ipv4\.ip_unprivileged_port_start\) need root or the CAP_NET_BIND_SERVICE capability\. Fix: run Bootbench as root, or give this program the two network capabilities once: sudo setcap 'cap_net_bind_service,cap_net_raw=\+ep' \/\S+/,
    );
  });

  test('every service port is named', () => {
    const names = [67, 68, 69, 4011, 80].map(
      (port) => explainBindFailure({ protocol: port === 80 ? 'tcp' : 'udp', port, code: 'EACCES', platform: 'linux' }).message.split(':')[0],
    );
    assert.deepEqual(names, [
      'Cannot open UDP port 67 (DHCP / Proxy DHCP server)',
      'Cannot open UDP port 68 (DHCP client)',
      'Cannot open UDP port 69 (TFTP)',
      'Cannot open UDP port 4011 (PXE boot server)',
      'Cannot open TCP port 80 (HTTP)',
    ]);
  });

  test('macOS and Windows get their own fix', () => {
    assert.match(explainBindFailure({ protocol: 'udp', port: 69, code: 'EACCES', platform: 'darwin' }).message, /Fix: run Bootbench with sudo/);
    assert.match(
      explainBindFailure({ protocol: 'udp', port: 69, code: 'EACCES', platform: 'win32' }).message,
      /Windows refused access to it\. Fix: run Bootbench as Administrator.*excludedportrange/,
    );
  });

  test('SO_BINDTODEVICE refused: CAP_NET_RAW and the same fix', () => {
    const error = explainDeviceBindFailure('enp3s0', 'EPERM', 'linux');
    assert.ok(error instanceof DeviceBindError);
    assert.equal(error.interfaceName, 'enp3s0');
    assert.match(
      error.message,
      /^Cannot limit the DHCP\/TFTP sockets to enp3s0: .*SO_BINDTODEVICE.* needs root or the CAP_NET_RAW capability on this kernel\. Fix: run Bootbench as root, or .*setcap/,
    );
  });

  test('unknown NIC', () => {
    assert.match(explainDeviceBindFailure('eth7', 'ENODEV', 'linux').message, /^There is no network interface called "eth7"/);
  });
});

describe('port in use', () => {
  test('names the process and the service to stop', () => {
    const error = explainBindFailure({
      protocol: 'udp',
      port: 67,
      code: 'EADDRINUSE',
      platform: 'linux',
      findOwners: () => [{ inode: 1, localAddress: '0.0.0.0:67', pid: 1234, command: 'dnsmasq' }],
    });
    assert.equal(error.reason, 'in-use');
    assert.equal(error.owners[0]!.pid, 1234);
    assert.equal(
      error.message,
      'UDP port 67 (DHCP / Proxy DHCP server) is already in use by dnsmasq (pid 1234): stop it (`sudo systemctl stop dnsmasq`), ' +
        'or configure it not to listen on the bench NIC, then start Bootbench again.',
    );
  });

  test('owner not visible (another user, not root) / not found / not Linux', () => {
    const hidden = explainBindFailure({
      protocol: 'udp',
      port: 69,
      code: 'EADDRINUSE',
      platform: 'linux',
      findOwners: () => [{ inode: 5, localAddress: '0.0.0.0:69' }],
    });
    assert.equal(
      hidden.message,
      'UDP port 69 (TFTP) is already in use by a process of another user (run as root to see which): stop it, or pick another port.',
    );
    const unknown = explainBindFailure({ protocol: 'tcp', port: 80, code: 'EADDRINUSE', platform: 'linux', findOwners: () => [] });
    assert.equal(unknown.message, 'TCP port 80 (HTTP) is already in use by another program: stop it, or pick another port.');
    let looked = false;
    explainBindFailure({
      protocol: 'udp',
      port: 67,
      code: 'EADDRINUSE',
      platform: 'win32',
      findOwners: () => {
        looked = true;
        return [];
      },
    });
    assert.equal(looked, false, '/proc is only read on Linux');
  });

  test('several holders are all named', () => {
    assert.equal(
      describePortOwners([
        { inode: 1, localAddress: '0.0.0.0:67', pid: 10, command: 'dnsmasq' },
        { inode: 1, localAddress: '0.0.0.0:67', pid: 11, command: 'dnsmasq' },
        { inode: 2, localAddress: '[::]:67', pid: 10, command: 'dnsmasq' },
      ]),
      'dnsmasq (pid 10) and dnsmasq (pid 11)',
    );
  });

  test('Node errors from services that bind themselves (HTTP) get the same words', () => {
    const error = explainNodeBindError(Object.assign(new Error('listen EACCES: permission denied 0.0.0.0:80'), { code: 'EACCES' }), 'tcp', 80);
    assert.ok(error instanceof PortBindError);
    assert.match(error.message, /^Cannot open TCP port 80 \(HTTP\)/);
    const other = new Error('boom');
    assert.equal(explainNodeBindError(other, 'tcp', 80), other);
  });
});

describe('/proc/net parsing and owner lookup', () => {
  const table = (rows: { local: string; port: number; state: string; inode: number }[]) =>
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n' +
    rows
      .map(
        (r, i) =>
          `  ${i}: ${r.local}:${r.port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 ${r.state} 00000000:00000000 00:00000000 00000000     0        0 ${r.inode} 2 0000000000000000 0`,
      )
      .join('\n') +
    '\n';

  test('addresses and ports decoded', () => {
    const rows = parseProcNetTable(table([{ local: procHex('127.0.0.1'), port: 4011, state: '07', inode: 99 }]));
    assert.deepEqual(rows, [{ localAddress: '127.0.0.1:4011', port: 4011, state: '07', inode: 99 }]);
  });

  test('a fake /proc: UDP owner found through /proc/PID/fd; TCP only when listening', () => {
    const proc = mkdtempSync(join(tmpdir(), 'bb-proc-'));
    try {
      mkdirSync(join(proc, 'net'));
      writeFileSync(
        join(proc, 'net', 'udp'),
        table([
          { local: procHex('0.0.0.0'), port: 67, state: '07', inode: 4242 },
          { local: procHex('0.0.0.0'), port: 68, state: '07', inode: 4343 },
        ]),
      );
      writeFileSync(join(proc, 'net', 'udp6'), table([]));
      writeFileSync(
        join(proc, 'net', 'tcp'),
        table([
          { local: procHex('0.0.0.0'), port: 80, state: '01', inode: 5000 }, // established: not a holder
          { local: procHex('0.0.0.0'), port: 8080, state: '0A', inode: 5001 },
        ]),
      );
      for (const [pid, comm, links] of [
        ['1234', 'dnsmasq', ['socket:[4242]', '/dev/null']],
        ['77', 'nginx', ['socket:[5001]']],
      ] as const) {
        mkdirSync(join(proc, pid, 'fd'), { recursive: true });
        writeFileSync(join(proc, pid, 'comm'), `${comm}\n`);
        links.forEach((target, fd) => symlinkSync(target, join(proc, pid, 'fd', String(fd + 3))));
      }
      assert.deepEqual(findPortOwner('udp', 67, proc), { inode: 4242, localAddress: '0.0.0.0:67', pid: 1234, command: 'dnsmasq' });
      assert.deepEqual(findPortOwners('udp', 68, proc), [{ inode: 4343, localAddress: '0.0.0.0:68' }], 'socket without a visible process');
      assert.equal(findPortOwner('udp', 69, proc), undefined);
      assert.equal(findPortOwner('tcp', 80, proc), undefined);
      assert.equal(findPortOwner('tcp', 8080, proc)?.command, 'nginx');
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  test('the real /proc: finds this very process holding a loopback port', { skip: process.platform !== 'linux' && 'needs Linux /proc' }, async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    try {
      const owner = findPortOwner('udp', socket.address().port);
      assert.equal(owner?.pid, process.pid);
      assert.equal(owner?.localAddress, `127.0.0.1:${socket.address().port}`);
    } finally {
      socket.close();
    }
  });
});
