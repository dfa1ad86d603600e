// Golden tests on real firmware packets captured in the QEMU lab (test/fixtures/captures,
// see its README): iPXE's BIOS ROM, OVMF's own PXE (EDK2 PxeBcDxe) and iPXE's UEFI ROM,
// with dnsmasq answering. Each client message must decode to what the firmware is known to
// send, and our Proxy DHCP and boot server must answer it the way PXE-NOTES requires.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientMac, decodeDhcpPacket, encodeDhcpPacket } from '../../main/dhcp/packet.js';
import { canonicalUuid } from '../../main/dhcp/options.js';
import { decideProxyReply } from '../../main/dhcp/proxy.js';
import { decideBootServerReply } from '../../main/dhcp/boot-server.js';
import type { PlannedReply } from '../../main/dhcp/reply.js';
import type { BootPolicyConfig } from '../../main/pxe/boot-policy.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'captures');
const dhcpFiles = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.bin') && !f.includes('-tftp-')) : [];
const read = (name: string) => readFileSync(join(dir, name));
const have = (name: string) => dhcpFiles.includes(name);

const SERVER = '192.0.2.1';
const policy: BootPolicyConfig = { serverAddress: SERVER, httpBaseUrl: `http://${SERVER}:8080`, boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi' } };

interface Expect {
  mac: string;
  arch: number;
  vendor: RegExp;
  ipxe: boolean;
  uuid: string;
  file: string;
}
const clients: Record<string, Expect> = {
  'ipxe-bios': {
    mac: '52:54:00:bb:01:00',
    arch: 0,
    vendor: /^PXEClient:Arch:00000:UNDI:002001$/,
    ipxe: true,
    uuid: 'b007be4c-0000-4000-8000-000001000000',
    file: 'undionly.kpxe',
  },
  ovmf: {
    mac: '52:54:00:bb:02:01',
    arch: 7,
    vendor: /^PXEClient:Arch:00007:UNDI:003000$/,
    ipxe: false,
    uuid: 'b007be4c-0000-4000-8000-000002000001',
    file: 'ipxe.efi',
  },
  'ipxe-efi': {
    mac: '52:54:00:bb:03:02',
    arch: 7,
    vendor: /^PXEClient:Arch:00007:UNDI:003010$/,
    ipxe: true,
    uuid: 'b007be4c-0000-4000-8000-000003000002',
    file: 'ipxe.efi',
  },
};

if (dhcpFiles.length === 0) {
  test(
    'captured firmware packets',
    { skip: 'no captures in test/fixtures/captures (sudo node --import tsx test/lab/capture-fixtures.ts makes them)' },
    () => {},
  );
}

describe('every captured DHCP message', () => {
  for (const file of dhcpFiles) {
    test(`${file}: decodes, and re-encodes to the same typed packet`, () => {
      const p = decodeDhcpPacket(read(file));
      assert.ok(p.options.messageType !== undefined);
      assert.deepEqual(decodeDhcpPacket(encodeDhcpPacket(p)), p);
    });
  }
});

for (const [name, e] of Object.entries(clients)) {
  describe(`${name} (captured)`, () => {
    const discover = `${name}-discover.bin`;
    const request4011 = `${name}-pxe-request-4011.bin`;

    test(
      'DISCOVER: MAC, architecture, vendor class, user class, UUID as the firmware sent them',
      { skip: have(discover) ? false : `${discover} not captured` },
      () => {
        const p = decodeDhcpPacket(read(discover));
        assert.equal(p.options.messageType, 1);
        assert.equal(clientMac(p), e.mac);
        assert.deepEqual(p.options.clientArch, [e.arch]);
        assert.match(p.options.vendorClassId ?? '', e.vendor);
        // iPXE's user class is the bare string "iPXE", not RFC 3004 framed.
        if (e.ipxe) assert.deepEqual(p.options.userClass, { format: 'plain', classes: ['iPXE'] });
        else assert.equal(p.options.userClass, undefined);
        assert.equal(p.options.ipxe !== undefined, e.ipxe, 'option 175 only from iPXE');
        // The VM was started with -uuid e.uuid: the canonical form must match it.
        assert.equal(canonicalUuid(p.options.clientUuid?.guid), e.uuid);
        assert.equal(p.options.maxMessageSize, 1472);
      },
    );

    test(
      'our proxy offer to it: no address, siaddr and option 60 set, UUID echoed, the right file',
      { skip: have(discover) ? false : `${discover} not captured` },
      () => {
        const plan = decideProxyReply(decodeDhcpPacket(read(discover)), { serverAddress: SERVER, policy, ports: { server: 67, client: 68 } });
        assert.equal(plan.action, 'reply');
        const r = decodeDhcpPacket(encodeDhcpPacket((plan as PlannedReply).reply));
        assert.equal(r.yiaddr, '0.0.0.0');
        assert.equal(r.siaddr, SERVER);
        assert.equal(r.options.vendorClassId, 'PXEClient');
        assert.equal(canonicalUuid(r.options.clientUuid?.guid), e.uuid);
        assert.equal(r.file, e.file);
        assert.equal(r.options.pxe !== undefined, e.arch === 0, 'option 43 for BIOS only');
        assert.deepEqual((plan as PlannedReply).to, { address: '255.255.255.255', port: 68 });
      },
    );

    test(
      'the 4011 request: answered with an ACK to its source, boot item echoed when sent',
      { skip: have(request4011) ? false : `${request4011} not captured` },
      () => {
        const req = decodeDhcpPacket(read(request4011));
        assert.equal(req.options.messageType, 3);
        assert.notEqual(req.ciaddr, '0.0.0.0', 'the client already has its address');
        // OVMF sends from port 4011 (PXE-NOTES); the source port is whatever it was.
        const source = { address: req.ciaddr, port: name === 'ovmf' ? 4011 : 68 };
        const plan = decideBootServerReply(req, source, { serverAddress: SERVER, policy });
        assert.equal(plan.action, 'reply', plan.action === 'ignore' ? plan.reason : '');
        const r = (plan as PlannedReply).reply;
        assert.deepEqual((plan as PlannedReply).to, source);
        assert.equal(r.options.messageType, 5);
        assert.equal(r.file, e.file);
        assert.equal(r.siaddr, SERVER);
        assert.equal(r.options.vendorClassId, 'PXEClient');
        assert.deepEqual(r.options.pxe?.bootItem, req.options.pxe?.bootItem);
      },
    );
  });
}
