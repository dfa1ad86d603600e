// `bootbench doctor`: what would stop `serve` from working, each finding with a plain fix.
// Issue 9 grows it (other DHCP/PXE servers on the NIC, firewall state).
import { checkPrivileges, findPortOwner, listInterfaces, resolveServeInterface } from '../net/index.js';

export interface Finding {
  level: 'ok' | 'warn' | 'error';
  message: string;
  fix?: string;
}

const PORTS: { proto: 'udp' | 'tcp'; port: number; service: string }[] = [
  { proto: 'udp', port: 67, service: 'DHCP / Proxy DHCP' },
  { proto: 'udp', port: 69, service: 'TFTP' },
  { proto: 'udp', port: 4011, service: 'PXE boot server' },
  { proto: 'tcp', port: 8080, service: 'HTTP' },
];

export async function runDoctor(options: { interfaceName?: string }): Promise<Finding[]> {
  const findings: Finding[] = [];

  const privileges = checkPrivileges();
  if (privileges.ok) findings.push({ level: 'ok', message: 'privileges: can bind ports 67, 69 and 4011 and scope sockets to a NIC' });
  else for (const problem of privileges.problems) findings.push({ level: 'error', message: problem.message, fix: problem.fix });

  for (const { proto, port, service } of PORTS) {
    const owner = findPortOwner(proto, port);
    if (owner) {
      findings.push({
        level: 'error',
        message: `${proto.toUpperCase()} port ${port} (${service}) is in use by ${owner.command ?? 'another process'}${owner.pid ? ` (pid ${owner.pid})` : ''}`,
        fix: `stop that service (e.g. \`systemctl stop ${owner.command ?? 'it'}\`) or${port === 8080 ? ' choose another --http-port' : ' run Bootbench on another machine'}`,
      });
    } else {
      findings.push({ level: 'ok', message: `${proto.toUpperCase()} port ${port} (${service}) is free` });
    }
  }

  try {
    const nic = resolveServeInterface(options.interfaceName);
    findings.push({ level: 'ok', message: `interface: ${nic.name} (${nic.ipv4.map((a) => a.address).join(', ')}) would serve` });
    if (!nic.up) findings.push({ level: 'error', message: `${nic.name} has no link`, fix: 'plug in the bench switch cable, or choose another --interface' });
    if (nic.kind === 'wifi') findings.push({ level: 'warn', message: `${nic.name} is Wi-Fi: PXE clients are wired, and many access points drop DHCP broadcasts between clients`, fix: 'use a wired NIC connected to the bench switch' });
    if (nic.kind === 'virtual') findings.push({ level: 'warn', message: `${nic.name} is a virtual NIC (bridge, VPN, container or VM network)`, fix: 'use it only if the bench PCs are really on it (e.g. a lab bridge)' });
  } catch (err) {
    const names = listInterfaces().filter((n) => n.kind !== 'loopback').map((n) => n.name);
    findings.push({ level: 'error', message: (err as Error).message, fix: names.length ? `pass --interface with one of: ${names.join(', ')}` : 'connect a network interface' });
  }
  return findings;
}
