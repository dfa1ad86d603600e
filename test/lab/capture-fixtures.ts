// Regenerates test/fixtures/captures/: real PXE client packets from the lab's QEMU
// firmware (iPXE BIOS ROM, OVMF's PxeBcDxe, iPXE EFI ROM), captured with tshark.
//
//   sudo node --import tsx test/lab/capture-fixtures.ts
//
// dnsmasq plays both the office DHCP server and the Proxy DHCP/TFTP server, so the
// captured client behaviour does not depend on Bootbench's own answers. Each client
// message is saved as its raw UDP payload, `<client>-<message>.bin`; dnsmasq's
// answers are saved too, as `dnsmasq-<message>-for-<client>.bin`, for comparison.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BootLab, BRIDGE, PROJECT_ROOT, QemuClient, labUnavailableReason, logTail, startDnsmasqPxe, type ClientKind } from './boot-lab.js';
import { waitFor } from '../helpers/netns.js';
import { biosMarkerNbp, uefiMarkerNbp } from './marker-nbp.js';

const OUT = join(PROJECT_ROOT, 'test', 'fixtures', 'captures');
const CLIENT_NAME: Record<ClientKind, string> = {
  bios: 'ipxe-bios',
  uefi: 'ovmf',
  'uefi-ipxe': 'ipxe-efi',
  'uefi-secure': 'ovmf-secure-boot',
  'uefi-http': 'ovmf-http-boot',
  'uefi-secure-http': 'ovmf-secure-http-boot',
};
const CAPTURED_KINDS: ClientKind[] = ['bios', 'uefi', 'uefi-ipxe'];
const DHCP_TYPE: Record<string, string> = { '1': 'discover', '2': 'offer', '3': 'request', '5': 'ack', '8': 'inform' };

interface Frame {
  number: number;
  src: string;
  ipSrc: string;
  srcPort: number;
  dstPort: number;
  dhcpType?: string;
  payload: Buffer;
}

function readFrames(pcap: string): Frame[] {
  const out = execFileSync('tshark', [
    '-r',
    pcap,
    '-n',
    '-Y',
    'udp',
    '-T',
    'fields',
    '-E',
    'separator=\t',
    '-e',
    'frame.number',
    '-e',
    'eth.src',
    '-e',
    'ip.src',
    '-e',
    'udp.srcport',
    '-e',
    'udp.dstport',
    '-e',
    'dhcp.option.dhcp',
    '-e',
    'udp.payload',
  ]).toString();
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [number, src, ipSrc, srcPort, dstPort, dhcpType, payload] = line.split('\t');
      return {
        number: Number(number),
        src,
        ipSrc,
        srcPort: Number(srcPort),
        dstPort: Number(dstPort),
        dhcpType: dhcpType ? (DHCP_TYPE[dhcpType] ?? `type${dhcpType}`) : undefined,
        payload: Buffer.from(payload.replace(/:/g, ''), 'hex'),
      };
    });
}

async function main(): Promise<void> {
  const reason = labUnavailableReason({ programs: ['dnsmasq', 'tshark'] });
  if (reason) throw new Error(`cannot capture: ${reason}`);
  const lab = new BootLab('cap');
  try {
    const root = lab.makeRoot({ 'marker.0': biosMarkerNbp(), 'marker.efi': uefiMarkerNbp() });
    lab.addOffice();
    lab.startRouterAdvertiser();
    const server = startDnsmasqPxe(lab, { mode: 'proxy', root, boot: { bios: 'marker.0', uefi64: 'marker.efi' } });
    await server.ready();
    const pcap = join(lab.dir, 'capture.pcap');
    const tshark = lab.spawn('tshark', lab.serverNs, 'tshark', ['-i', BRIDGE, '-f', 'ip and udp', '-w', pcap]);
    await waitFor(() => lab.processReport().includes('Capturing on') || existsSync(pcap), 10_000, 'tshark to start capturing');
    await new Promise((r) => setTimeout(r, 500));
    const clients = CAPTURED_KINDS.map((kind, i) => new QemuClient(lab, kind, i));
    const results = await Promise.all(clients.map((c) => c.run(60_000)));
    await new Promise((r) => setTimeout(r, 500));
    tshark.kill('SIGINT');
    await new Promise((r) => tshark.once('exit', r));
    for (const r of results) {
      if (!r.debugcon.includes('BOOTBENCH-NBP-OK')) throw new Error(`${r.kind} did not boot the marker:\n${logTail(r.serial)}\n${lab.processReport()}`);
    }

    mkdirSync(OUT, { recursive: true });
    for (const name of readdirSync(OUT)) if (name.endsWith('.bin') || name.endsWith('.pcap')) rmSync(join(OUT, name));
    copyFileSync(pcap, join(OUT, 'lab-proxy-dnsmasq.pcap'));
    const frames = readFrames(pcap);
    const saved: string[] = [];
    const save = (name: string, frame: Frame): void => {
      writeFileSync(join(OUT, `${name}.bin`), frame.payload);
      saved.push(`${name}.bin (frame ${frame.number}, ${frame.payload.length} bytes)`);
    };
    for (const client of clients) {
      const name = CLIENT_NAME[client.kind];
      const fromClient = frames.filter((f) => f.src === client.mac);
      const first = (pred: (f: Frame) => boolean): Frame | undefined => fromClient.find(pred);
      const discover = first((f) => f.dstPort === 67 && f.dhcpType === 'discover');
      const request = first((f) => f.dstPort === 67 && f.dhcpType === 'request');
      const pxeRequest = first((f) => f.dstPort === 4011);
      if (discover) save(`${name}-discover`, discover);
      if (request) save(`${name}-request`, request);
      if (pxeRequest) save(`${name}-pxe-${pxeRequest.dhcpType ?? 'request'}-4011`, pxeRequest);
      fromClient.filter((f) => f.dstPort === 69).forEach((f, i) => save(`${name}-tftp-rrq-${i + 1}`, f));
      fromClient
        .filter((f) => f.payload.readUInt16BE(0) === 5 && f.dstPort !== 69 && f.srcPort !== 67 && f.srcPort !== 68)
        .forEach((f, i) => save(`${name}-tftp-error-${i + 1}`, f));
      // dnsmasq's answers to this client (xid matches the client's messages).
      const xids = new Set(fromClient.filter((f) => f.dhcpType).map((f) => f.payload.readUInt32BE(4)));
      const replies = frames.filter((f) => f.ipSrc === '192.0.2.1' && f.dhcpType && xids.has(f.payload.readUInt32BE(4)));
      const offer = replies.find((f) => f.dhcpType === 'offer');
      const ack = replies.find((f) => f.srcPort === 4011);
      if (offer) save(`dnsmasq-proxy-offer-for-${name}`, offer);
      if (ack) save(`dnsmasq-pxe-ack-for-${name}`, ack);
    }
    process.stdout.write(`saved to ${OUT}:\n  ${saved.join('\n  ')}\n`);
  } finally {
    await lab.destroy();
  }
}

await main();
