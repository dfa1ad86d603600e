// Sends IPv6 router advertisements with router lifetime 0 on one interface, forever.
// Run inside the lab's server namespace:  node --import tsx router-advertiser.ts br0
//
// Why: iPXE configures IPv4 (DHCP) and IPv6 (NDP) in parallel and waits for both
// before it boots; on a LAN without an IPv6 router it gives up on NDP only after about
// 13 s. An advertisement without the M and O flags completes its IPv6 autoconfiguration
// at once, and lifetime 0 says "I am not a default router" (RFC 4861 section 4.2,
// 6.3.4), so nothing routes through the lab. No prefix is announced: the lab uses no
// IPv6 addresses beyond link-local.
//
// Node's dgram has no raw sockets, so the socket comes from libc through koffi (a
// project dependency). For raw ICMPv6 sockets the kernel fills in the checksum.
import koffi from 'koffi';

const AF_INET6 = 10;
const SOCK_RAW = 3;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_IPV6 = 41;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;

/*
 * Router Advertisement, RFC 4861 section 4.2:
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type=134  |     Code=0    |          Checksum             |
 * | Cur Hop Limit |M|O|  Reserved |       Router Lifetime         |
 * |                         Reachable Time                        |
 * |                          Retrans Timer                        |
 * |   Options: source link-layer address (type 1, length 1 = 8 bytes)
 */
export function encodeRouterAdvertisement(sourceMac?: Buffer): Buffer {
  const ra = Buffer.alloc(16 + (sourceMac ? 8 : 0));
  ra[0] = 134;
  ra[4] = 64; // current hop limit suggestion
  ra[5] = 0; // M=0 O=0: no DHCPv6, autoconfiguration is complete
  ra.writeUInt16BE(0, 6); // router lifetime 0: not a default router
  if (sourceMac) {
    ra[16] = 1;
    ra[17] = 1;
    sourceMac.copy(ra, 18);
  }
  return ra;
}

function sockaddrIn6(address: Buffer, scopeId: number): Buffer {
  const sa = Buffer.alloc(28);
  sa.writeUInt16LE(AF_INET6, 0); // sin6_family (host order)
  address.copy(sa, 8);
  sa.writeUInt32LE(scopeId, 24);
  return sa;
}

export function startRouterAdvertiser(interfaceName: string, intervalMs = 500): () => void {
  const libc = koffi.load('libc.so.6');
  const socket = libc.func('int socket(int domain, int type, int protocol)');
  const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t length)');
  const sendto = libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)');
  const close = libc.func('int close(int fd)');
  const ifNameToIndex = libc.func('unsigned int if_nametoindex(const char *name)');

  const ifindex = ifNameToIndex(interfaceName) as number;
  if (!ifindex) throw new Error(`no interface ${interfaceName}`);
  const fd = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6) as number;
  if (fd < 0) throw new Error(`raw ICMPv6 socket failed (errno ${koffi.errno()}): needs CAP_NET_RAW`);
  const int = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return b;
  };
  // RFC 4861 section 6.1.2: receivers drop advertisements whose hop limit is not 255.
  setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, int(255), 4);
  setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, int(ifindex), 4);
  const allNodes = sockaddrIn6(Buffer.from('ff020000000000000000000000000001', 'hex'), ifindex);
  const packet = encodeRouterAdvertisement();
  const send = (): void => {
    const sent = sendto(fd, packet, packet.length, 0, allNodes, allNodes.length) as number;
    if (sent < 0) process.stderr.write(`router advertisement not sent (errno ${koffi.errno()})\n`);
  };
  send();
  const timer = setInterval(send, intervalMs);
  return () => {
    clearInterval(timer);
    close(fd);
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const interfaceName = process.argv[2];
  if (!interfaceName) {
    process.stderr.write('usage: router-advertiser.ts INTERFACE\n');
    process.exit(2);
  }
  const stop = startRouterAdvertiser(interfaceName);
  process.stdout.write(`sending router advertisements (lifetime 0) on ${interfaceName}\n`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      stop();
      process.exit(0);
    });
}
