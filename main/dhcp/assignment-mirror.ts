// The DHCP thread's copy of "which machine boots what". The store lives on the main thread;
// asking it for every packet would put the main thread (its GC pauses, SQLite writes, the UI)
// back in every answer's path. So the thread keeps:
//   - the view: the identities that may have an assignment of their own, and the one default
//     answer for everyone else (a new MAC, a DISCOVER storm): answered here, at once;
//   - answers for machines with their own assignment, asked from the main thread once
//     (the request waits for that one round trip) and kept until the store changes.
// The main thread sends a new view whenever the store may have changed, which drops the kept
// answers. Views and answers come over one ordered port, and the main thread computes an
// answer when it sends it: one that arrives before a new view is dropped with the old ones,
// one that arrives after it is already as new as that view. So a question in flight is
// never thrown away, whatever the order.
import { type MachineBootAssignment, mayHaveOwnAssignment, type AssignedIdentities } from '../pxe/index.js';
import type { AssignmentViewData } from './dhcp-thread-messages.js';

/** Answers kept at most (oldest out first). */
const MAX_ANSWERS = 4096;

export class AssignmentMirror {
  private view: { assigned: AssignedIdentities; defaultAssignment: MachineBootAssignment | undefined } | undefined;
  private readonly answers = new Map<string, MachineBootAssignment | undefined>();
  private readonly asking = new Map<string, Promise<void>>();

  constructor(
    view: AssignmentViewData | undefined,
    /** Asks the main thread for one client's answer; `keep` false: use it for the waiting requests only. */
    private readonly ask: (mac: string, uuid: string | undefined) => Promise<{ assignment: MachineBootAssignment | undefined; keep: boolean }>,
  ) {
    this.reset(view);
  }

  /** A new copy from the main thread; every kept answer goes. */
  reset(view: AssignmentViewData | undefined): void {
    this.view = view && { assigned: { macs: new Set(view.macs), uuids: new Set(view.uuids) }, defaultAssignment: view.defaultAssignment };
    this.answers.clear();
  }

  /** Undefined when lookup() can answer this client now; else a promise that settles when it can. */
  prepare(mac: string, uuid: string | undefined): Promise<void> | undefined {
    if (this.view && !mayHaveOwnAssignment(this.view.assigned, mac, uuid)) return undefined;
    const key = answerKey(mac, uuid);
    if (this.answers.has(key)) return undefined;
    let asking = this.asking.get(key);
    if (!asking) {
      asking = this.ask(mac, uuid).then(({ assignment, keep }) => {
        this.asking.delete(key);
        if (!keep) return; // lookup() gives the waiting requests the default, and the next one asks again
        if (this.answers.size >= MAX_ANSWERS) this.answers.delete(this.answers.keys().next().value!);
        this.answers.set(key, assignment);
      });
      this.asking.set(key, asking);
    }
    return asking;
  }

  /** The answer as things are now. A client not prepared (or dropped since) gets the default. */
  lookup = (mac: string, uuid?: string): MachineBootAssignment | undefined => {
    if (!this.view || mayHaveOwnAssignment(this.view.assigned, mac, uuid)) {
      const key = answerKey(mac, uuid);
      if (this.answers.has(key)) return this.answers.get(key);
    }
    return this.view?.defaultAssignment;
  };

  /**
   * The service's lookup hook (DhcpBootConfig.lookupMachine): the answer now when the copy
   * has it (everyone without an assignment of their own, kept answers), else a promise of it
   * that settles once the main thread has answered.
   */
  assignmentFor = (mac: string, uuid?: string): MachineBootAssignment | undefined | Promise<MachineBootAssignment | undefined> => {
    const view = this.view;
    // The common case (a new MAC, a storm) decided with one check.
    if (view && !mayHaveOwnAssignment(view.assigned, mac, uuid)) return view.defaultAssignment;
    const waiting = this.prepare(mac, uuid);
    return waiting ? waiting.then(() => this.lookup(mac, uuid)) : this.lookup(mac, uuid);
  };
}

function answerKey(mac: string, uuid: string | undefined): string {
  return uuid === undefined ? mac : `${mac} ${uuid}`;
}
