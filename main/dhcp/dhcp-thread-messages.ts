// What the main thread and the DHCP thread (dhcp-thread.ts, dhcp-thread-worker.ts) say to
// each other over their MessagePort. Everything here is structured-clone data.
import type { BootEventFields, BootEventType } from '../core/index.js';
import type { MachineBootAssignment } from '../pxe/index.js';
import type { DhcpBootConfig } from './reply.js';
import type { DhcpServiceOptions } from './service.js';

/** The assignment copy the thread keeps: who may have one of their own, and everyone else's answer. */
export interface AssignmentViewData {
  macs: string[];
  uuids: string[];
  defaultAssignment: MachineBootAssignment | undefined;
}

/** DhcpServiceOptions without what cannot cross a thread (functions, injected test doubles). */
export type DhcpThreadServiceOptions = Omit<DhcpServiceOptions, 'socketFactory' | 'addressProber' | 'clock' | 'publish' | 'logger' | 'policy'> & {
  policy: Omit<DhcpBootConfig, 'lookupMachine'>;
};

export interface DhcpThreadInit {
  options: DhcpThreadServiceOptions;
  /** Whether machines have assignments at all (the host has a store). */
  lookups: boolean;
  /** The first copy, when `lookups`; undefined means: ask for every client. */
  view?: AssignmentViewData;
  /** Per-request events published a second at most; the rest are counted (`dhcp.storm`). */
  eventsPerSecond: number;
}

/** An error as the thread saw it, rebuilt on the main thread with its class (PortBindError ...). */
export interface ThreadError {
  name: string;
  message: string;
  stack?: string;
  fields: Record<string, unknown>;
}

export type FromDhcpThread =
  | { t: 'started'; ports: { server: number; pxe: number } }
  | { t: 'failed'; error: ThreadError }
  /** Events in order: [type, time, details]. */
  | { t: 'events'; list: [BootEventType, number, BootEventFields[BootEventType]][] }
  /** Per-request events of the second that starts at `time` that were over the budget. */
  | { t: 'storm'; time: number; left: number }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> }
  | { t: 'lookup'; id: number; mac: string; uuid?: string }
  | { t: 'stopped' };

export type ToDhcpThread =
  /** `keep` false: the answer is for this request only (the read failed; the default stood in). */
  | { t: 'lookup'; id: number; assignment: MachineBootAssignment | undefined; keep: boolean }
  /** The store changed: a new copy, and every answer kept for a machine is dropped. */
  | { t: 'assignments'; view?: AssignmentViewData }
  | { t: 'stop' };
