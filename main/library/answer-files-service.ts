// Answer files on a running host: each PC's own rendered files over HTTP, served only to that
// PC, the installers' callbacks, and the answer-file part of each iPXE/GRUB script.
//
//   GET /answers/e<entry>/<mac hex>/<file>        preseed.cfg, user-data, meta-data, vendor-data, ks.cfg,
//                                                autounattend.xml, winpeshl.ini (by the template's dialect)
//   GET /answers/e<entry>/<mac hex>/started?hostname=   the installer read its answers
//   GET /answers/e<entry>/<mac hex>/installed           the installer finished: boot once ends here at the latest
//
// The serving rule: a request is answered only when it comes from the address the host saw
// the machine use in DHCP, with that machine's MAC. Anything else gets the same 404 as a
// missing file (nothing tells a stranger a file exists) and an `answers.refused` event.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Publish } from '../core/index.js';
import { machineFields, normalizeMac, type BootEntry, type Machine, type Store } from '../store/index.js';
import {
  ANSWER_FILE_NAMES,
  CALLBACK_INSTALLED,
  CALLBACK_STARTED,
  answerFolderPath,
  checkTemplate,
  renderAnswerFiles,
  type AnswerHost,
  type AnswerMachine,
  type AnswerRefusal,
  type AnswerRendering,
} from './answer-files.js';
import { readAnswerTemplate, type StoredAnswerTemplate } from './answer-files-store.js';
import { nextAssignmentAfterInstall } from './boot-once.js';
import type { BootRequest, ScriptEntry } from './ipxe-script.js';

export interface AnswerFileServiceOptions extends AnswerHost {
  store: Store;
  dataDir: string;
  /** The MAC the host saw in DHCP for this address; never what the client says about itself. */
  macForIp: (ip: string) => string | undefined;
  publish?: Publish;
  /** The "Local disk" entry boot once falls back to (created on first use). */
  localDiskEntry: () => BootEntry;
}

/** How one answer-file request is answered: what to send, and what to publish. */
export type AnswerResponse =
  | {
      status: 200;
      contentType: string;
      body: string;
      event: 'answers.served' | 'install.started' | 'install.done';
      machine: Machine;
      entryId: number;
      hostname?: string;
    }
  | { status: 404; reason: string; machine?: Machine; entryId?: number };

/** A stored template (answer-files-store.ts), however the served folder reaches it. */
const TEMPLATE_FILE = /\/answers\/e\d+\.json/i;
const ANSWER_PATH = /^\/answers\/e(\d+)\/([0-9a-f]{12})\/([A-Za-z0-9._-]+)$/;

function machineLabel(machine: Machine): string {
  return machine.name || machine.macs[0] || `machine ${machine.id}`;
}

/** A machine of the store as rendering needs it, for the MAC it boots from. */
export function answerMachine(store: Store, machine: Machine, mac: string): AnswerMachine {
  return { name: machine.name, mac, uuid: machine.uuid, group: machine.group, fields: machineFields(store).get(machine.id) };
}

/**
 * Decides one request (the serving rule, rendering, callbacks) without touching a socket.
 * `seenMac` is the MAC the host saw in DHCP for the requester's address.
 */
export function answerRequest(
  options: Pick<AnswerFileServiceOptions, 'store' | 'dataDir' | 'serverAddress' | 'httpBaseUrl'>,
  path: string,
  seenMac: string | undefined,
  query: URLSearchParams = new URLSearchParams(),
): AnswerResponse {
  const match = ANSWER_PATH.exec(path.toLowerCase());
  if (!match) return { status: 404, reason: 'no such answer file' };
  const entryId = Number(match[1]);
  const mac = normalizeMac(match[2])!;
  const file = match[3];
  const machine = options.store.machines.findByMac(mac);
  if (!machine) return { status: 404, reason: `${mac} is not in the machine list`, entryId };
  if (!seenMac)
    return { status: 404, reason: `the host has seen no DHCP exchange from this address, so it cannot tell it is ${machineLabel(machine)}`, machine, entryId };
  if (seenMac !== mac) return { status: 404, reason: `asked by ${seenMac}, not by ${machineLabel(machine)} (${mac})`, machine, entryId };
  const entry = options.store.entries.get(entryId);
  const template = entry && readAnswerTemplate(options.dataDir, entry);
  if (!entry || !template) return { status: 404, reason: `entry ${entryId} has no answer file`, machine, entryId };
  if (file === CALLBACK_STARTED || file === CALLBACK_INSTALLED) {
    const hostname = query.get('hostname')?.slice(0, 253) || undefined;
    return {
      status: 200,
      contentType: 'text/plain; charset=utf-8',
      body: 'ok\n',
      event: file === CALLBACK_STARTED ? 'install.started' : 'install.done',
      machine,
      entryId,
      ...(hostname ? { hostname } : {}),
    };
  }
  if (!ANSWER_FILE_NAMES[template.dialect].includes(file)) return { status: 404, reason: `a ${template.dialect} answer has no file ${file}`, machine, entryId };
  const rendered = renderAnswerFiles(template, answerMachine(options.store, machine, mac), options, entryId);
  if (!rendered.ok) return { status: 404, reason: rendered.message, machine, entryId };
  const body = rendered.files.find((f) => f.name === file)!;
  return { status: 200, contentType: body.contentType, body: body.body, event: 'answers.served', machine, entryId };
}

export class AnswerFileService {
  constructor(private readonly options: AnswerFileServiceOptions) {}

  /** The HTTP server's `dynamic` hook for /answers/...; false for any other path. */
  httpRoute = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    // A served folder that holds the data folder would otherwise hand out the templates themselves.
    const templateFile = TEMPLATE_FILE.test(url.pathname);
    if (!url.pathname.startsWith('/answers/') && !templateFile) return false;
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const seenMac = this.options.macForIp(ip);
    const answer: AnswerResponse = templateFile
      ? { status: 404, reason: 'answer-file templates are never served (they are in the data folder, which should not be inside the served folder)' }
      : answerRequest(this.options, url.pathname, seenMac, url.searchParams);
    const publish = this.options.publish;
    if (answer.status === 404) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end('not found\n');
      publish?.('answers.refused', {
        mac: seenMac,
        ip,
        file: url.pathname,
        entryId: answer.entryId,
        machine: answer.machine && machineLabel(answer.machine),
        reason: answer.reason,
      });
      return true;
    }
    const body = Buffer.from(answer.body, 'utf8');
    res.writeHead(200, { 'content-type': answer.contentType, 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    // A HEAD (a probe, a link checker) reports nothing about the install.
    if (req.method === 'HEAD') return true;
    const who = { mac: seenMac, ip, entryId: answer.entryId, machine: machineLabel(answer.machine) };
    if (answer.event === 'answers.served') publish?.('answers.served', { ...who, file: url.pathname });
    else {
      publish?.(answer.event, { ...who, ...(answer.hostname ? { hostname: answer.hostname } : {}) });
      if (answer.event === 'install.done') this.installed(answer.machine, answer.entryId, seenMac!);
    }
    return true;
  };

  /** The installer finished: a boot-once assignment of that entry still pending ends now. */
  private installed(machine: Machine, entryId: number, mac: string): void {
    const next = nextAssignmentAfterInstall({ entryId: machine.entryId, bootOnce: machine.bootOnce }, entryId);
    if (!next.changed) return;
    this.options.store.machines.update(machine.id, { entryId: this.options.localDiskEntry().id, bootOnce: false });
    this.options.publish?.('host.warning', { mac, message: next.reason, bootOnce: 'completed', entryId });
  }

  /** The answer-file part of a script entry for this PC: its kernel arguments, or why it cannot boot it. */
  scriptEntry(entry: ScriptEntry, mac: string | undefined): ScriptEntry {
    const stored = this.options.store.entries.get(entry.id);
    const template = stored && readAnswerTemplate(this.options.dataDir, stored);
    if (!template) return entry;
    const machine = mac ? this.options.store.machines.findByMac(mac) : undefined;
    if (!mac || !machine) {
      const refusal = `${mac ?? 'this PC'} is not in the machine list, so it has no answers for ${entry.name}: add it (name and MAC) and boot again`;
      return { ...entry, answers: { refusal } };
    }
    const rendered = renderAnswerFiles(template, answerMachine(this.options.store, machine, mac), this.options, entry.id);
    return { ...entry, answers: rendered.ok ? { kernelArguments: rendered.kernelArguments, inject: rendered.inject } : { refusal: rendered.message } };
  }

  /** A script request with every entry's answer-file part for this PC. */
  decorate = (request: BootRequest, mac: string | undefined): BootRequest => {
    if (request.action === 'entry') {
      const entry = this.scriptEntry(request.entry, mac);
      // The PC's screen says why; the timeline says it too, for the technician at the host.
      if (entry.answers && 'refusal' in entry.answers) {
        const machine = mac ? this.options.store.machines.findByMac(mac) : undefined;
        this.options.publish?.('answers.refused', {
          mac,
          file: mac ? answerFolderPath(entry.id, mac) : '/answers',
          entryId: entry.id,
          machine: machine && machineLabel(machine),
          reason: `${entry.name} was not booted: ${entry.answers.refusal}`,
        });
      }
      return { ...request, entry };
    }
    if (request.action === 'menu') return { ...request, entries: request.entries.map((e) => this.scriptEntry(e, mac)) };
    return request;
  };
}

/** Machines that boot this entry: their own assignment, or their group's. */
export function machinesBooting(store: Store, entryId: number): Machine[] {
  const groups = new Set(
    store.machines
      .listGroups()
      .filter((g) => g.entryId === entryId)
      .map((g) => g.name.toLowerCase()),
  );
  return store.machines.list().filter((m) => m.entryId === entryId || (m.entryId === null && m.group !== '' && groups.has(m.group.toLowerCase())));
}

/**
 * Everything that stops an entry's answers before a PC boots: the template's own problems,
 * and each machine that boots it but lacks a value. One line each, naming machine and variable.
 */
export function answerRefusals(
  options: Pick<AnswerFileServiceOptions, 'store' | 'dataDir' | 'serverAddress' | 'httpBaseUrl'>,
  entry: BootEntry,
  template: StoredAnswerTemplate | undefined = readAnswerTemplate(options.dataDir, entry),
): string[] {
  return answerRefusalsFor(options, entry, machinesBooting(options.store, entry.id), template);
}

/**
 * The same for these machines (about to be given the entry): empty when the entry has no
 * template or every one of them has what it needs.
 */
export function answerRefusalsFor(
  options: Pick<AnswerFileServiceOptions, 'store' | 'dataDir' | 'serverAddress' | 'httpBaseUrl'>,
  entry: BootEntry,
  machines: Machine[],
  template: StoredAnswerTemplate | undefined = readAnswerTemplate(options.dataDir, entry),
): string[] {
  if (!template) return [];
  const problems = checkTemplate(template, machineFields(options.store).names());
  if (problems.length > 0) return problems;
  const refusals: string[] = [];
  for (const machine of machines) {
    const mac = machine.macs[0];
    if (!mac) {
      refusals.push(`${machineLabel(machine)} has no MAC address, so the host cannot tell it asks for its own answers: add its MAC in the machine list.`);
      continue;
    }
    const rendered: AnswerRendering | AnswerRefusal = renderAnswerFiles(template, answerMachine(options.store, machine, mac), options, entry.id);
    if (!rendered.ok) refusals.push(rendered.message);
  }
  return refusals;
}
