// The well-known ports Bootbench serves, named for messages.

const SERVICE_NAMES: Record<number, string> = {
  67: 'DHCP / Proxy DHCP server',
  68: 'DHCP client',
  69: 'TFTP',
  80: 'HTTP',
  4011: 'PXE boot server',
};

export function serviceNameForPort(port: number): string | undefined {
  return SERVICE_NAMES[port];
}
