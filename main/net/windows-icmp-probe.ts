// The address check on Windows: ICMP echo through iphlpapi's IcmpSendEcho2Ex, which needs
// no administrator rights (Windows has no packet sockets for user programs, and raw ICMP
// sockets need them). The echo goes out from the NIC's own address (SourceAddress), which
// under Windows' strong host model keeps it on that NIC, as the DHCP sockets are bound to
// that address (main/net/scoped-udp.ts). Written from the Win32 documentation; NOT run
// here (no Windows machine in this project's CI yet). Its pure parts are unit-tested.
//
// The call blocks for up to the timeout, so it runs through koffi's asynchronous calls
// (a worker thread) and the event loop goes on; each probe has its own ICMP handle.
import { loadKoffi } from './libc.js';
import type { AddressProbeResult } from './address-probe.js';

/** IPAddr: the four octets in network order, read as the ULONG Windows passes around (x86/x64/arm64 are little-endian). */
export function toIpAddr(address: string): number {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) throw new Error(`not an IPv4 address: ${address}`);
  return Buffer.from(octets).readUInt32LE(0);
}

/**
 * The first ICMP_ECHO_REPLY in IcmpSendEcho2Ex's reply buffer (<ipexport.h>):
 *
 *   0          4         8               12         14         16
 *   | Address  | Status  | RoundTripTime | DataSize | Reserved | Data pointer, Options ...
 *   | IPAddr   | ULONG   | ULONG (ms)    | USHORT   | USHORT   |
 *
 * In use when at least one reply came, with Status IP_SUCCESS (0), from the address probed.
 */
export function echoReplyShowsInUse(replies: number, buffer: Buffer, probed: string): boolean {
  if (replies < 1 || buffer.length < 16) return false;
  return buffer.readUInt32LE(4) === 0 && buffer.readUInt32LE(0) === toIpAddr(probed);
}

interface IcmpApi {
  create(): unknown;
  close(handle: unknown): void;
  sendAsync(
    handle: unknown,
    source: number,
    destination: number,
    data: Buffer,
    reply: Buffer,
    timeoutMs: number,
    done: (err: unknown, replies: number) => void,
  ): void;
  invalid(handle: unknown): boolean;
}

let api: IcmpApi | undefined;

function loadIcmpApi(): IcmpApi {
  if (api) return api;
  const koffi = loadKoffi();
  const lib = koffi.load('iphlpapi.dll');
  const create = lib.func('void * __stdcall IcmpCreateFile()');
  const close = lib.func('bool __stdcall IcmpCloseHandle(void *handle)');
  const send = lib.func(
    'uint32_t __stdcall IcmpSendEcho2Ex(void *handle, void *event, void *apc, void *context, uint32_t source, uint32_t destination, const void *data, uint16_t size, void *options, void *reply, uint32_t replySize, uint32_t timeout)',
  );
  api = {
    create: () => create(),
    close: (handle) => close(handle),
    sendAsync: (handle, source, destination, data, reply, timeoutMs, done) =>
      send.async(handle, null, null, null, source, destination, data, data.length, null, reply, reply.length, timeoutMs, done),
    // INVALID_HANDLE_VALUE is (HANDLE)-1.
    invalid: (handle) => handle === null || koffi.address(handle) === 0xffffffffffffffffn || koffi.address(handle) === 0xffffffffn,
  };
  return api;
}

const PAYLOAD = Buffer.from('bootbench address check', 'latin1');

export function openWindowsIcmpProber(options: { sourceAddress: string; timeoutMs: number }) {
  if (process.platform !== 'win32') throw new Error('IcmpSendEcho2Ex is a Windows call');
  const icmp = loadIcmpApi();
  const source = toIpAddr(options.sourceAddress);
  let closed = false;
  return {
    method: 'icmp' as const,
    onError: undefined as ((reason: string) => void) | undefined,
    probe(ip: string): Promise<AddressProbeResult> {
      if (closed) return Promise.reject(new Error('the address prober is closed'));
      const handle = icmp.create();
      if (icmp.invalid(handle)) return Promise.reject(new Error('IcmpCreateFile failed'));
      const started = Date.now();
      // Room for one reply, its data, an ICMP error's 8 bytes and the IO_STATUS_BLOCK.
      const reply = Buffer.alloc(256);
      return new Promise((resolve) => {
        icmp.sendAsync(handle, source, toIpAddr(ip), PAYLOAD, reply, options.timeoutMs, (err, replies) => {
          icmp.close(handle);
          const inUse = !err && echoReplyShowsInUse(replies, reply, ip);
          resolve({ inUse, method: 'icmp', ms: Date.now() - started });
        });
      });
    },
    close(): void {
      closed = true;
    },
  };
}
