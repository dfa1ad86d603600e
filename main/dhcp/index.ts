// The public entry of main/dhcp/: what other folders may use.
export { DhcpThread, DhcpThreadUnavailable, type DhcpAssignmentSource } from './dhcp-thread.js';
export { DhcpMessageType, messageTypeName } from './options.js';
export { BOOTREPLY, BOOTREQUEST, FLAG_BROADCAST, decodeDhcpPacket, encodeDhcpPacket, type DhcpPacket } from './packet.js';
export { DhcpService } from './service.js';
