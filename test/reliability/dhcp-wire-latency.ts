// The host's own DHCP answer time, from a capture on its NIC: kernel timestamps of each
// DISCOVER coming in and the offer with the same xid going out. Whatever the clients' own
// scheduling adds (they share this machine's two cores) is not in it; queueing in the
// host's socket buffer, its event loop and its GC pauses are.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Lab } from '../helpers/netns.js';

/**
 * Milliseconds from each BOOTREQUEST (op 1) to the first BOOTREPLY (op 2) with its xid,
 * sorted, from a classic pcap file (dumpcap -P) of Ethernet frames.
 *   pcap file: 24-byte header, then per frame: ts_sec u32 | ts_usec u32 | caplen u32 | len u32 | frame
 *   frame: Ethernet (14) | IPv4 (IHL*4) | UDP (8) | BOOTP: op (1) ... xid at offset 4 (RFC 2131 §2)
 */
export function dhcpAnswerLatencies(pcap: Buffer): number[] {
  const requestAt = new Map<number, number>();
  const out: number[] = [];
  for (let at = 24; at + 16 <= pcap.length;) {
    const t = pcap.readUInt32LE(at) * 1e3 + pcap.readUInt32LE(at + 4) / 1e3;
    const length = pcap.readUInt32LE(at + 8);
    const frame = pcap.subarray(at + 16, at + 16 + length);
    at += 16 + length;
    if (frame.length < 14 + 20 + 8 + 240 || frame.readUInt16BE(12) !== 0x0800) continue;
    const bootp = frame.subarray(14 + (frame[14]! & 0x0f) * 4 + 8);
    const xid = bootp.readUInt32BE(4);
    if (bootp[0] === 1) {
      if (!requestAt.has(xid)) requestAt.set(xid, t);
    } else if (bootp[0] === 2 && requestAt.has(xid)) {
      out.push(t - requestAt.get(xid)!);
      requestAt.delete(xid);
    }
  }
  return out.sort((a, b) => a - b);
}

/** The p-th percentile of sorted values (NaN when empty). */
export function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
}

/**
 * Captures DHCP on `iface` in `ns` into `file` until stop() (dumpcap, from the tshark package).
 * `idle`: dumpcap runs under SCHED_IDLE, so it only takes CPU the host leaves. The timestamps
 * do not depend on when dumpcap runs: the kernel stamps each frame as it passes the NIC, and
 * the 16 MiB ring holds the frames until dumpcap reads them.
 */
export async function captureDhcp(lab: Lab, ns: string, iface: string, file: string, options: { idle?: boolean } = {}): Promise<{ stop(): Promise<Buffer> }> {
  const dumpcap = ['dumpcap', '-q', '-P', '-B', '16', '-i', iface, '-f', 'udp port 67 or udp port 68', '-w', file];
  const child: ChildProcess = options.idle ? lab.spawn(ns, 'chrt', ['-i', '0', ...dumpcap]) : lab.spawn(ns, dumpcap[0]!, dumpcap.slice(1));
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  // dumpcap says nothing with -q; give it a moment to open the interface.
  await new Promise((r) => setTimeout(r, 1000));
  if (child.exitCode !== null) throw new Error(`dumpcap exited: ${err}`);
  return {
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
      return readFileSync(file);
    },
  };
}
