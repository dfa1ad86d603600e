// Public API of the network layer: NICs, interface-scoped UDP sockets, privileges,
// port owners, Wake-on-LAN.
export type { UdpSocketFactory, UdpSocketOptions } from './udp-socket-factory.js';
export {
  listInterfaces,
  chooseLikelyBenchInterface,
  resolveServeInterface,
  broadcastAddressOf,
  prefixLengthOf,
  InterfaceChoiceError,
  offeredForServing,
  type NetInterface,
  type InterfaceKind,
  type Ipv4Address,
  type InterfaceSources,
} from './interfaces.js';
export { createScopedUdpSocketFactory, openPlainSocket, type ScopedUdpSocketFactoryOptions } from './scoped-udp.js';
export {
  PortBindError,
  DeviceBindError,
  explainBindFailure,
  explainDeviceBindFailure,
  explainNodeBindError,
  serviceNameForPort,
  type PortBindReason,
  type BindFailure,
} from './bind-errors.js';
export { findPortOwner, findPortOwners, describePortOwners, parseProcNetTable, type PortOwner, type PortProtocol } from './port-owner.js';
export { checkPrivileges, privilegeFix, DEFAULT_SERVICE_PORTS, type PrivilegeReport, type PrivilegeProblem, type PortPermission } from './privileges.js';
export {
  sendMagicPacket,
  buildMagicPacket,
  parseMac,
  wakeMachines,
  wakeAddressesOf,
  WAKE_ON_LAN_PORT,
  type MagicPacketOptions,
  type WakeOptions,
  type WakeResult,
} from './wake-on-lan.js';
export { watchInterface, diffInterface, type InterfaceWatch, type InterfaceChange, type InterfaceChangeKind, type WatchOptions } from './interface-watch.js';
export { DEFAULT_ADDRESS_PROBE_MS } from './address-probe.js';
export { openArpProber } from './arp-probe.js';
export { DoorbellWorkerClient, startDoorbellWorker, type DoorbellWorker } from './doorbell-worker.js';
export { checkFirewall, type FirewallCheckOptions } from './firewall.js';
export { openIcmpProber } from './icmp-probe.js';
export { EAGAIN, EINTR, ENOBUFS, POLLIN, POLLOUT, loadLinuxSyscalls, pinnedBuffer, type LinuxSyscalls } from './libc.js';
export { UNPRIVILEGED_PORTS_COMMAND, detectPackaging, type HostPackaging } from './privileges.js';
export { encodeSockaddr, openTransferDescriptor } from './udp-descriptor.js';
export { openWindowsIcmpProber } from './windows-icmp-probe.js';
export {
  encodeGeneralQuery,
  decodeIgmpDatagram,
  QuerierElection,
  DEFAULT_QUERIER_TIMINGS,
  type QuerierTimings,
  type QuerierRole,
  type HeardIgmp,
} from './igmp.js';
export { IgmpQuerier, listenForQueriers, openIgmpSocket, type IgmpQuerierOptions, type IgmpSocket } from './igmp-querier.js';
