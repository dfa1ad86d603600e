// nftables rules for the client's namespace that drop a share of the UDP datagrams to and
// from the TFTP server(s) (this kernel has no netem), per port range: requests on 69 and
// the transfers' own ports (TIDs).
export const LOSS_TABLE = 'bblossy';

/** `tenths` out of ten datagrams dropped (10: all); `servers` one address or several. */
export function lossRules(tenths: number, direction: 'both' | 'from-server', servers: string | string[] = '192.0.2.1'): string {
  const drop = tenths >= 10 ? 'drop' : `numgen random mod 10 < ${tenths} drop`;
  const list = Array.isArray(servers) ? servers : [servers];
  const set = list.length === 1 ? list[0] : `{ ${list.join(', ')} }`;
  const lines = [
    `table inet ${LOSS_TABLE} {`,
    '  chain in { type filter hook input priority 0; policy accept;',
    `    ip saddr ${set} udp sport 69 ${drop}`,
    `    ip saddr ${set} udp sport 1024-65535 ${drop}`,
    '  }',
  ];
  if (direction === 'both') {
    lines.push(
      '  chain out { type filter hook output priority 0; policy accept;',
      `    ip daddr ${set} udp dport 69 ${drop}`,
      `    ip daddr ${set} udp dport 1024-65535 ${drop}`,
      '  }',
    );
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/**
 * The same loss for datagrams from `client`, applied in the server's namespace on the way
 * in: the client's send succeeds and the datagram is lost on the wire. (Dropped on the
 * client's way out, sendto fails with EPERM, which some clients, atftp among them, treat
 * as fatal rather than as loss.)
 */
export function lossRulesAtServer(tenths: number, client: string): string {
  const drop = tenths >= 10 ? 'drop' : `numgen random mod 10 < ${tenths} drop`;
  return (
    [
      `table inet ${LOSS_TABLE} {`,
      '  chain in { type filter hook input priority 0; policy accept;',
      `    ip saddr ${client} udp dport 69 ${drop}`,
      `    ip saddr ${client} udp dport 1024-65535 ${drop}`,
      '  }',
      '}',
    ].join('\n') + '\n'
  );
}
