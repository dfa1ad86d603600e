// One lab scenario: topology + PXE server + QEMU clients booted in parallel, and the
// checks every scenario shares (marker printed, exit status, events carry the MAC).
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BootLab,
  QemuClient,
  labServerKind,
  labUnavailableReason,
  logTail,
  startPxeServer,
  type ClientKind,
  type ClientResult,
  type RunningServer,
  type ServerOptions,
} from './boot-lab.js';
import { biosMarkerNbp, markerText, qemuExitStatus, uefiMarkerNbp, BIOS_EXIT_VALUE, UEFI_EXIT_VALUE } from './marker-nbp.js';

export const FULL_DHCP_POOL = { first: '192.0.2.100', last: '192.0.2.150' };

/** Per-client limit. Under TCG a client reaches its NBP in 4-15 s; four at once on two cores take longer. */
export const CLIENT_TIMEOUT_MS = Number(process.env.BOOTBENCH_LAB_CLIENT_TIMEOUT_MS ?? 90_000);

export interface ScenarioOptions {
  name: string;
  mode: 'proxy' | 'dhcp';
  office: boolean;
  clients: ClientKind[];
  /** extra files for --root (name -> content or source path) */
  rootFiles?: Record<string, Buffer | string>;
  boot?: ServerOptions['boot'];
  /** iPXE script text; written to a file passed as --ipxe-script */
  ipxeScript?: string;
  httpPort?: number;
  /** does the scenario need bootbench (not the dnsmasq reference server)? */
  needsBootbench?: boolean;
  /** fills the --data folder before `serve` starts (library entries, machines) */
  prepareData?: (dataDir: string) => void | Promise<void>;
  /** QEMU disk arguments per client (by index), for files in the lab folder the test made */
  clientDisks?: (index: number, labDir: string) => string[];
}

export type BootEventLine = Record<string, unknown> & { type: string; mac?: string };

/** Why this scenario is skipped here, or undefined. */
export function scenarioSkipReason(options: Pick<ScenarioOptions, 'clients' | 'office' | 'needsBootbench'>): string | undefined {
  const programs: string[] = [];
  if (options.office || labServerKind() === 'dnsmasq') programs.push('dnsmasq');
  const reason = labUnavailableReason({ kinds: options.clients, programs });
  if (reason) return reason;
  if (options.needsBootbench && labServerKind() === 'dnsmasq')
    return 'BOOTBENCH_LAB_SERVER=dnsmasq: this scenario needs bootbench (HTTP, iPXE scripts or the library)';
  return undefined;
}

export class Scenario {
  lab?: BootLab;
  server?: RunningServer;
  readonly clients: QemuClient[] = [];
  private results?: Promise<ClientResult[]>;

  constructor(readonly options: ScenarioOptions) {}

  /** Builds the lab, starts the server and boots every client at once. */
  async start(): Promise<void> {
    const o = this.options;
    const lab = (this.lab = new BootLab(o.mode === 'proxy' ? 'px' : 'dh'));
    const root = lab.makeRoot({ 'marker.0': biosMarkerNbp(), 'marker.efi': uefiMarkerNbp(), ...o.rootFiles });
    let ipxeScript: string | undefined;
    if (o.ipxeScript) {
      ipxeScript = join(lab.dir, 'lab.ipxe');
      writeFileSync(ipxeScript, o.ipxeScript);
    }
    const dataDir = join(lab.dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    await o.prepareData?.(dataDir);
    if (o.office) lab.addOffice();
    lab.startRouterAdvertiser();
    this.server = startPxeServer(lab, {
      dataDir,
      mode: o.mode,
      root,
      boot: o.boot ?? { bios: 'marker.0', uefi64: 'marker.efi' },
      ipxeScript,
      httpPort: o.httpPort,
      pool: o.mode === 'dhcp' ? FULL_DHCP_POOL : undefined,
    });
    await this.server.ready();
    o.clients.forEach((kind, i) => this.clients.push(new QemuClient(lab, kind, i, o.clientDisks?.(i, lab.dir))));
    this.results = Promise.all(this.clients.map((c) => c.run(CLIENT_TIMEOUT_MS)));
  }

  async result(index: number): Promise<ClientResult> {
    if (!this.results) throw new Error('scenario did not start (see the before hook error)');
    return (await this.results)[index];
  }

  events(): BootEventLine[] {
    return (this.server?.events ?? []) as BootEventLine[];
  }

  async stop(): Promise<void> {
    await this.lab?.destroy();
  }

  /** Everything a reader needs when a client failed. */
  failureReport(result: ClientResult): string {
    const how = result.timedOut
      ? `no marker within ${CLIENT_TIMEOUT_MS} ms`
      : result.gaveUp
        ? 'the firmware gave up on network boot'
        : `QEMU exited with ${result.exitCode ?? result.signal}`;
    const interesting = this.events().filter(
      (e) =>
        (e.mac === result.mac && !/progress$/.test(e.type)) || e.type === 'host.warning' || (e.type === 'log' && e.level !== 'info' && e.level !== 'debug'),
    );
    return [
      `${this.options.name}: ${result.kind} client ${result.mac}: ${how} after ${(result.elapsedMs / 1000).toFixed(1)} s`,
      `--- serial console (last lines) ---`,
      logTail(result.serial, 30),
      `--- debug console (last lines) ---`,
      logTail(result.debugcon, 8),
      `--- last events for this MAC, and warnings (of ${this.events().length} events) ---`,
      ...interesting.slice(-25).map((e) => JSON.stringify(e)),
      this.lab?.processReport(20) ?? '',
    ].join('\n');
  }
}

export function expectedMarker(kind: ClientKind): { text: string; exitStatus: number } {
  return kind === 'bios'
    ? { text: markerText('bios'), exitStatus: qemuExitStatus(BIOS_EXIT_VALUE) }
    : { text: markerText('uefi64'), exitStatus: qemuExitStatus(UEFI_EXIT_VALUE) };
}

/** The client ran the marker NBP: marker on the debug console and QEMU's exit status from it. */
export function assertRanMarker(scenario: Scenario, result: ClientResult): void {
  const { text, exitStatus } = expectedMarker(result.kind);
  if (!result.debugcon.includes(text) || result.exitCode !== exitStatus) {
    assert.fail(`marker "${text}" / exit ${exitStatus} expected, got exit ${result.exitCode ?? result.signal}\n${scenario.failureReport(result)}`);
  }
}

/** An event of `type` for this MAC exists (optionally naming `file` in one of its string fields). */
export function assertEventForMac(scenario: Scenario, result: ClientResult, type: string, file?: string): BootEventLine {
  if (labServerKind() !== 'bootbench') return { type };
  const found = scenario.events().find((e) => e.type === type && e.mac === result.mac && (file === undefined || mentions(e, file)));
  if (!found) {
    const sameType = scenario
      .events()
      .filter((e) => e.type === type)
      .slice(-5)
      .map((e) => JSON.stringify(e));
    assert.fail(
      `no ${type} event with mac ${result.mac}${file ? ` naming ${file}` : ''} in the --log json output; ` +
        `${type} events seen: ${sameType.length ? `\n${sameType.join('\n')}` : 'none'}\n${scenario.failureReport(result)}`,
    );
  }
  return found;
}

/** When the client asked the boot server on 4011, a pxe.ack for its MAC must have followed. */
export function assertBootServerAnswered(scenario: Scenario, result: ClientResult): boolean {
  if (labServerKind() !== 'bootbench') return false;
  const asked = scenario.events().some((e) => e.type === 'dhcp.received' && e.mac === result.mac && Number(e.port) === 4011);
  if (asked) assertEventForMac(scenario, result, 'pxe.ack');
  return asked;
}

function mentions(event: BootEventLine, file: string): boolean {
  const wanted = file.replace(/^\/+/, '').toLowerCase();
  return Object.values(event).some((v) => {
    if (typeof v !== 'string') return false;
    const path = v
      .replace(/^https?:\/\/[^/]+/, '')
      .replace(/^\/+/, '')
      .toLowerCase();
    return path === wanted || path.endsWith(`/${wanted}`);
  });
}

export function describeTime(result: ClientResult, reached = 'the NBP marker', scenario?: Scenario): string {
  const server = scenario?.server?.label ?? labServerKind();
  return `${result.kind} ${result.mac}: boot to ${reached} in ${(result.elapsedMs / 1000).toFixed(1)} s (QEMU start until it exited; ${server})`;
}
