// The real-firmware lab: a namespace topology, QEMU PXE clients, and the servers
// around them (the office DHCP server, and bootbench or dnsmasq as the PXE server).
//
//   server namespace (<prefix>srv)                 office namespace (<prefix>off)
//   +-------------------------------------+        +---------------------------+
//   | br0 192.0.2.1/24                    |  veth  | eth0 192.0.2.2/24         |
//   |  |-- office0 -----------------------+--------+ dnsmasq: DHCP 192.0.2.50- |
//   |  |-- tap0 -- QEMU client 0          |        |          192.0.2.99       |
//   |  |-- tap1 -- QEMU client 1 ...      |        +---------------------------+
//   | bootbench serve --interface br0     |
//   +-------------------------------------+
//
// Nothing links either namespace to the host namespace, there is no default route,
// and every address is in 192.0.2.0/24 (TEST-NET-1). `destroy()` removes it all.
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, missingPrograms, netnsUnavailableReason } from '../helpers/netns.js';
import { compiledCliIsCurrent } from '../helpers/compiled-cli.js';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const SERVER_ADDRESS = '192.0.2.1';
export const OFFICE_ADDRESS = '192.0.2.2';
export const OFFICE_POOL = { first: '192.0.2.50', last: '192.0.2.99' };
export const BRIDGE = 'br0';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** Secure Boot build (needs SMM) and variables with Microsoft's keys enrolled, Secure Boot on. */
export const OVMF_CODE_SECBOOT = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
export const OVMF_VARS_MS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
/** QEMU's e1000 ROM from Debian's ipxe-qemu: one image with iPXE for BIOS and for UEFI. */
export const IPXE_E1000_ROM = '/usr/lib/ipxe/qemu/efi-e1000.rom';
export const IPXE_UNDIONLY = '/usr/lib/ipxe/undionly.kpxe';
export const IPXE_EFI = '/usr/lib/ipxe/ipxe.efi';

/**
 * bios: SeaBIOS + e1000 with iPXE's BIOS ROM; uefi: OVMF + virtio-net, EDK2's PxeBcDxe;
 * uefi-ipxe: OVMF + e1000 with iPXE's UEFI ROM; uefi-secure: like uefi, Secure Boot enforced;
 * uefi-http / uefi-secure-http: like uefi / uefi-secure with PXE and IPv6 switched off, so
 * EDK2's HttpBootDxe ("UEFI HTTPv4") is the only network boot option.
 */
export type ClientKind = 'bios' | 'uefi' | 'uefi-ipxe' | 'uefi-secure' | 'uefi-http' | 'uefi-secure-http';
export const ALL_KINDS: readonly ClientKind[] = ['bios', 'uefi', 'uefi-ipxe', 'uefi-secure', 'uefi-http', 'uefi-secure-http'];

const isSecureKind = (kind: ClientKind): boolean => kind === 'uefi-secure' || kind === 'uefi-secure-http';
export const isHttpBootKind = (kind: ClientKind): boolean => kind === 'uefi-http' || kind === 'uefi-secure-http';

/** Why the lab cannot run here (test is skipped with this), or undefined. */
export function labUnavailableReason(options: { kinds?: readonly ClientKind[]; programs?: string[]; files?: string[] } = {}): string | undefined {
  const netns = netnsUnavailableReason();
  if (netns) return netns;
  const programs = missingPrograms('qemu-system-x86_64', ...(options.programs ?? []));
  if (programs) return programs;
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (QEMU tap networking)';
  const kinds = options.kinds ?? ALL_KINDS;
  const files = [...(options.files ?? [])];
  if (kinds.some((k) => k === 'uefi' || k === 'uefi-ipxe' || k === 'uefi-http')) files.push(OVMF_CODE, OVMF_VARS);
  if (kinds.some(isSecureKind)) files.push(OVMF_CODE_SECBOOT, OVMF_VARS_MS);
  if (kinds.some((k) => k === 'bios' || k === 'uefi-ipxe')) files.push(IPXE_E1000_ROM);
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) return `missing file(s): ${missing.join(', ')} (apt-get install ovmf ipxe-qemu ipxe)`;
  return undefined;
}

/** Which PXE server a lab run uses. BOOTBENCH_LAB_SERVER=dnsmasq swaps in dnsmasq to check the lab itself. */
export function labServerKind(): 'bootbench' | 'dnsmasq' {
  return process.env.BOOTBENCH_LAB_SERVER === 'dnsmasq' ? 'dnsmasq' : 'bootbench';
}

let labCounter = 0;

export class BootLab {
  readonly lab: Lab;
  readonly serverNs: string;
  officeNs?: string;
  readonly dir: string;
  private tapCount = 0;
  private readonly processes: { name: string; child: ChildProcess; output: string[] }[] = [];

  constructor(name = 'pxe') {
    this.lab = new Lab(name);
    this.dir = mkdtempSync(join(tmpdir(), `bootbench-lab-${labCounter++}-`));
    this.serverNs = this.lab.namespace('srv');
    const ns = this.serverNs;
    // No DAD on link-local addresses: the router advertiser needs its source address at once.
    this.lab.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    this.lab.exec(ns, 'ip', ['link', 'add', BRIDGE, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    this.lab.exec(ns, 'ip', ['addr', 'add', `${SERVER_ADDRESS}/24`, 'dev', BRIDGE]);
    this.lab.exec(ns, 'ip', ['link', 'set', BRIDGE, 'up']);
  }

  /** Adds the office network: a second namespace on the bridge, running dnsmasq as its DHCP server. */
  addOffice(): void {
    this.officeNs = this.lab.namespace('off');
    this.lab.veth(this.officeNs, 'eth0', `${OFFICE_ADDRESS}/24`, this.serverNs, 'office0', null);
    this.lab.exec(this.serverNs, 'ip', ['link', 'set', 'office0', 'master', BRIDGE]);
    const leases = join(this.dir, 'office.leases');
    writeFileSync(leases, '');
    this.spawn('office-dnsmasq', this.officeNs, 'dnsmasq', [
      '--keep-in-foreground',
      '--log-facility=-',
      '--conf-file=/dev/null',
      '--port=0',
      '--user=root',
      '--interface=eth0',
      '--bind-interfaces',
      ...(process.env.BOOTBENCH_LAB_OFFICE_PING ? [] : ['--no-ping']),
      `--dhcp-leasefile=${leases}`,
      `--pid-file=${join(this.dir, 'office.pid')}`,
      `--dhcp-range=${OFFICE_POOL.first},${OFFICE_POOL.last},255.255.255.0,10m`,
      // dnsmasq does not hold an address between OFFER and REQUEST: with several clients
      // booting at once it offered one address to two of them, and OVMF (which collects
      // offers for ~4 s) then got a NAK ("PXE-E07: Network device error"). Fixed
      // reservations for the lab's MACs keep the office server out of the way.
      ...officeReservations(),
    ]);
  }

  /** A tap on the bridge for one QEMU client. */
  addTap(): string {
    const tap = `tap${this.tapCount++}`;
    this.lab.exec(this.serverNs, 'ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    this.lab.exec(this.serverNs, 'ip', ['link', 'set', tap, 'master', BRIDGE, 'up']);
    return tap;
  }

  startRouterAdvertiser(): void {
    this.spawn('router-advertiser', this.serverNs, process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'test', 'lab', 'router-advertiser.ts'), BRIDGE], {
      cwd: PROJECT_ROOT,
    });
  }

  /** Starts a long-running process in a namespace; output is kept for failure reports. */
  spawn(name: string, ns: string, cmd: string, args: string[], options: { cwd?: string; onLine?: (line: string) => void } = {}): ChildProcess {
    const child = this.lab.spawn(ns, cmd, args, { cwd: options.cwd });
    const output: string[] = [];
    let partial = '';
    const take = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        output.push(line);
        if (output.length > 5000) output.shift();
        options.onLine?.(line);
      }
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.processes.push({ name, child, output });
    return child;
  }

  /** Last lines of every background process (for failure messages). */
  processReport(lines = 30): string {
    return this.processes
      .map((p) => {
        // JSON event lines are reported separately (and filtered per client) by the scenarios.
        const text = p.output.filter((l) => !l.startsWith('{')).slice(-lines);
        const state = p.child.exitCode ?? p.child.signalCode ?? 'running';
        return `--- ${p.name} (exit ${state}) last ${text.length} lines ---\n${text.join('\n')}`;
      })
      .join('\n');
  }

  /** Files for the server's --root: the marker NBPs and anything else given. */
  makeRoot(files: Record<string, Buffer | string>): string {
    const root = join(this.dir, 'root');
    mkdirSync(root, { recursive: true });
    for (const [name, content] of Object.entries(files)) {
      const path = join(root, name);
      mkdirSync(dirname(path), { recursive: true });
      if (typeof content === 'string') copyFileSync(content, path);
      else writeFileSync(path, content);
    }
    return root;
  }

  async destroy(): Promise<void> {
    await this.lab.destroy();
    if (process.env.BOOTBENCH_LAB_KEEP) process.stderr.write(`lab files kept in ${this.dir}\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

function officeReservations(): string[] {
  const out: string[] = [];
  // Eight per kind keeps every reservation inside the office pool (192.0.2.50-99).
  ALL_KINDS.forEach((kind, k) => {
    for (let i = 0; i < 8; i++) out.push(`--dhcp-host=${clientMac(kind, i)},192.0.2.${50 + k * 8 + i}`);
  });
  return out;
}

// ---------------------------------------------------------------------------
// QEMU clients

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** A distinct UUID per client: without -uuid QEMU reports option 97 as all zeros. */
export function clientUuid(kind: ClientKind, index: number): string {
  return `b007be4c-0000-4000-8000-0000${hex2(ALL_KINDS.indexOf(kind) + 1)}0000${hex2(index)}`;
}

/** Locally administered 52:54:00 (QEMU's prefix) + lab byte + kind + index. */
export function clientMac(kind: ClientKind, index: number): string {
  return `52:54:00:bb:${hex2(ALL_KINDS.indexOf(kind) + 1)}:${hex2(index)}`;
}

export interface ClientResult {
  kind: ClientKind;
  mac: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** milliseconds from QEMU start until it exited (the marker NBP exits it) */
  elapsedMs: number;
  timedOut: boolean;
  /** the firmware printed that network boot failed, and was stopped */
  gaveUp: boolean;
  debugcon: string;
  serial: string;
}

export class QemuClient {
  readonly mac: string;
  readonly uuid: string;
  readonly serialFile: string;
  readonly debugconFile: string;
  private child?: ChildProcess;
  private started = 0;

  constructor(
    private readonly bootLab: BootLab,
    readonly kind: ClientKind,
    readonly index: number,
    /** QEMU arguments for the client's disks (files the test made), after the NIC */
    private readonly diskArgs: string[] = [],
  ) {
    this.mac = clientMac(kind, index);
    this.uuid = clientUuid(kind, index);
    const base = join(bootLab.dir, `client-${kind}-${index}`);
    this.serialFile = `${base}.serial.log`;
    this.debugconFile = `${base}.debugcon.log`;
  }

  args(tap: string): string[] {
    const base = join(this.bootLab.dir, `client-${this.kind}-${this.index}`);
    const secure = isSecureKind(this.kind);
    const args = [
      '-name',
      `bootbench-lab-${this.kind}-${this.index}`,
      // KVM exists here but cannot run this firmware (SeaBIOS+iPXE hangs, OVMF stops with
      // an emulation error), so plain TCG. The Secure Boot build of OVMF needs SMM.
      '-machine',
      secure ? 'q35,accel=tcg,smm=on' : 'q35,accel=tcg',
      '-cpu',
      'qemu64',
      '-m',
      this.memoryMb(),
      '-smp',
      '1',
      '-nodefaults',
      '-display',
      'none',
      '-no-user-config',
      '-no-reboot',
      '-uuid',
      this.uuid,
      '-serial',
      `file:${this.serialFile}`,
      '-debugcon',
      `file:${this.debugconFile}`,
      '-global',
      'isa-debugcon.iobase=0x402',
      '-device',
      'isa-debug-exit,iobase=0xf4,iosize=0x04',
      '-netdev',
      `tap,id=net0,ifname=${tap},script=no,downscript=no`,
    ];
    if (this.kind === 'bios') {
      // SeaBIOS writes its console (and iPXE's, through int 10h) to COM1 only when told.
      const sercon = `${base}.sercon`;
      writeFileSync(sercon, Buffer.from([0xf8, 0x03]));
      args.push('-fw_cfg', `name=etc/sercon-port,file=${sercon}`, '-boot', 'order=n');
      args.push('-device', `e1000,netdev=net0,mac=${this.mac},romfile=${IPXE_E1000_ROM}`);
    } else {
      const vars = `${base}.OVMF_VARS.fd`;
      copyFileSync(secure ? OVMF_VARS_MS : OVMF_VARS, vars);
      // Secure Boot: the variable store is writable only from SMM, as on real boards.
      if (secure) args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
      args.push(
        '-drive',
        `if=pflash,format=raw,unit=0,readonly=on,file=${secure ? OVMF_CODE_SECBOOT : OVMF_CODE}`,
        '-drive',
        `if=pflash,format=raw,unit=1,file=${vars}`,
      );
      if (isHttpBootKind(this.kind)) {
        // OVMF tries PXEv4, PXEv6, HTTPv4, HTTPv6 in turn, and under TCG each failed
        // attempt costs tens of seconds: its fw_cfg switches leave HTTPv4 as the only one.
        for (const knob of ['IPv4PXESupport', 'IPv6PXESupport', 'IPv6Support']) args.push('-fw_cfg', `name=opt/org.tianocore/${knob},string=n`);
      }
      if (this.kind !== 'uefi-ipxe') {
        // An empty romfile keeps iPXE out, so EDK2's own PxeBcDxe/HttpBootDxe is the client.
        args.push('-device', `virtio-net-pci,netdev=net0,mac=${this.mac},romfile=`);
      } else {
        args.push('-device', `e1000,netdev=net0,mac=${this.mac},romfile=${IPXE_E1000_ROM}`);
      }
    }
    if (this.diskArgs.length === 0) return args;
    // With disks attached the NIC must stay first: a disk that carries a boot loader (a
    // reference PC's) would otherwise be booted instead of the network.
    const nic = args.findIndex((a) => /^(e1000|virtio-net-pci),netdev=net0/.test(a));
    if (nic >= 0) args[nic] += ',bootindex=1';
    return [...args, ...this.diskArgs];
  }

  private memoryMb(): string {
    // Shim + GRUB + a distribution kernel decompressing itself need more than 256 MB: with
    // 256 MB the EFI stub failed with "XZ-compressed data is corrupt".
    return process.env.BOOTBENCH_LAB_MEMORY_MB ?? (isSecureKind(this.kind) ? '1024' : '256');
  }

  /** Powers the client off (the pending `run()` then resolves). */
  stop(): void {
    this.child?.kill('SIGKILL');
  }

  /** Boots the client and resolves when QEMU exits or `timeoutMs` passes (then it is killed). */
  run(timeoutMs: number): Promise<ClientResult> {
    const tap = this.bootLab.addTap();
    writeFileSync(this.serialFile, '');
    writeFileSync(this.debugconFile, '');
    this.started = Date.now();
    const child = this.bootLab.spawn(`qemu-${this.kind}-${this.index}`, this.bootLab.serverNs, 'qemu-system-x86_64', this.args(tap));
    this.child = child;
    return new Promise((resolve) => {
      let timedOut = false;
      let gaveUp = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      // Firmware that has given up on network boot never exits by itself (-no-reboot only
      // catches resets), so stop waiting as soon as its console says so.
      const watcher = setInterval(() => {
        const serial = readText(this.serialFile);
        if (GAVE_UP[this.kind].test(serial) || (this.kind !== 'bios' && OVMF_GAVE_UP.test(serial))) {
          clearInterval(watcher);
          gaveUp = true;
          setTimeout(() => child.kill('SIGKILL'), 1000);
        }
      }, 500);
      child.on('exit', (exitCode, signal) => {
        clearTimeout(timer);
        clearInterval(watcher);
        resolve({
          kind: this.kind,
          mac: this.mac,
          exitCode,
          signal,
          elapsedMs: Date.now() - this.started,
          timedOut,
          gaveUp,
          debugcon: readText(this.debugconFile),
          serial: readText(this.serialFile),
        });
      });
    });
  }
}

const GAVE_UP: Record<ClientKind, RegExp> = {
  bios: /No more network devices|No bootable device|Boot failed: could not read/,
  uefi: /failed to load Boot0001 "UEFI PXEv4|PXE-E\d\d: .*\s+BdsDxe: failed/,
  'uefi-ipxe': /No more network devices|failed to load Boot0001/,
  'uefi-secure': /failed to load Boot0001 "UEFI PXEv4/,
  'uefi-http': /failed to load Boot\d+ "UEFI HTTPv4/,
  'uefi-secure-http': /failed to load Boot\d+ "UEFI HTTPv4/,
};
// OVMF opens its setup menu once every boot option failed or returned (GRUB's `exit`).
const OVMF_GAVE_UP = /starting Boot0000 "UiApp"/;

function readText(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

/** Readable tail of a firmware log: ANSI escapes removed, last `lines` lines. */
export function logTail(text: string, lines = 25): string {
  const clean = text
    .replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, '')
    .replace(/\r/g, '\n')
    .replace(/\n{2,}/g, '\n');
  return clean.split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------
// PXE servers

export interface ServerOptions {
  mode: 'proxy' | 'dhcp';
  root: string;
  boot: { bios?: string; uefi64?: string; http64?: string };
  ipxeScript?: string;
  httpPort?: number;
  pool?: { first: string; last: string };
  /** --data folder (default: <lab dir>/data) */
  dataDir?: string;
}

export interface RunningServer {
  kind: 'bootbench' | 'dnsmasq';
  /** what ran, for the test output */
  label: string;
  /** JSON events (bootbench --log json only) */
  events: Record<string, unknown>[];
  ready(): Promise<void>;
}

/**
 * `bootbench serve` inside the server namespace: the built CLI when dist/ is newer than
 * every source file under main/, else the TypeScript source through tsx (a stale build
 * would test yesterday's code). BOOTBENCH_LAB_CLI=source forces the source;
 * BOOTBENCH_LAB_CLI=/path/to/cli.ts (or .js) runs another checkout's CLI.
 */
export function bootbenchCommand(): { cmd: string; args: string[]; label: string } {
  const override = process.env.BOOTBENCH_LAB_CLI;
  if (override && override !== 'source') {
    return { cmd: process.execPath, args: override.endsWith('.ts') ? ['--import', 'tsx', override] : [override], label: override };
  }
  const source = join(PROJECT_ROOT, 'main', 'cli', 'bootbench.ts');
  if (override === 'source' || !compiledCliIsCurrent()) {
    return { cmd: process.execPath, args: ['--import', 'tsx', source], label: 'main/cli/bootbench.ts via tsx' };
  }
  return { cmd: process.execPath, args: [join(PROJECT_ROOT, 'bin', 'bootbench.js')], label: 'bin/bootbench.js (dist)' };
}

export function startBootbench(bootLab: BootLab, options: ServerOptions): RunningServer {
  const events: Record<string, unknown>[] = [];
  const { cmd, args, label } = bootbenchCommand();
  const data = options.dataDir ?? join(bootLab.dir, 'data');
  mkdirSync(data, { recursive: true });
  args.push('serve', '--interface', BRIDGE, '--mode', options.mode, '--root', options.root, '--log', 'json', '--data', data);
  if (options.boot.bios) args.push('--boot', `bios=${options.boot.bios}`);
  if (options.boot.uefi64) args.push('--boot', `uefi64=${options.boot.uefi64}`);
  if (options.boot.http64) args.push('--boot', `http64=${options.boot.http64}`);
  if (options.ipxeScript) args.push('--ipxe-script', options.ipxeScript);
  if (options.httpPort) args.push('--http-port', String(options.httpPort));
  if (options.mode === 'dhcp') args.push('--pool', `${options.pool!.first}-${options.pool!.last}`);
  let readyResolve!: () => void;
  const readyPromise = new Promise<void>((r) => (readyResolve = r));
  const child = bootLab.spawn('bootbench', bootLab.serverNs, cmd, args, {
    cwd: PROJECT_ROOT,
    onLine: (line) => {
      if (!line.startsWith('{')) return;
      try {
        const event = JSON.parse(line) as Record<string, unknown>;
        events.push(event);
        // `serve` logs "bootbench serving on br0 (...)" once every service listens.
        if (event.type === 'log' && /serving on/.test(String(event.message))) readyResolve();
      } catch {
        /* not an event line */
      }
    },
  });
  return {
    kind: 'bootbench',
    label: `bootbench ${label}`,
    events,
    ready: () => waitForServer(child, readyPromise, bootLab, options),
  };
}

/** dnsmasq as the PXE server: the reference that proves the lab itself works (BOOTBENCH_LAB_SERVER=dnsmasq). */
export function startDnsmasqPxe(bootLab: BootLab, options: ServerOptions): RunningServer {
  const leases = join(bootLab.dir, 'pxe.leases');
  writeFileSync(leases, '');
  const args = [
    '--keep-in-foreground',
    '--log-facility=-',
    '--log-dhcp',
    '--conf-file=/dev/null',
    '--port=0',
    '--user=root',
    `--interface=${BRIDGE}`,
    '--bind-interfaces',
    '--no-ping',
    `--dhcp-leasefile=${leases}`,
    `--pid-file=${join(bootLab.dir, 'pxe.pid')}`,
    '--enable-tftp',
    `--tftp-root=${options.root}`,
    '--dhcp-match=set:efi64,option:client-arch,7',
    '--dhcp-match=set:efi64,option:client-arch,9',
    '--dhcp-userclass=set:ipxe,iPXE',
  ];
  const stripDotZero = (p: string): string => p.replace(/\.0$/, '');
  if (options.mode === 'proxy') {
    args.push(`--dhcp-range=${SERVER_ADDRESS},proxy`);
    // dnsmasq appends ".0" to BIOS (x86PC) service names itself.
    if (options.boot.bios) args.push(`--pxe-service=x86PC,"bootbench lab",${stripDotZero(options.boot.bios)}`);
    if (options.boot.uefi64) {
      args.push(`--pxe-service=x86-64_EFI,"bootbench lab",${options.boot.uefi64}`);
      args.push(`--pxe-service=BC_EFI,"bootbench lab",${options.boot.uefi64}`);
    }
  } else {
    args.push(`--dhcp-range=${options.pool!.first},${options.pool!.last},255.255.255.0,10m`);
    if (options.ipxeScript) args.push(`--dhcp-boot=tag:ipxe,http://${SERVER_ADDRESS}:${options.httpPort ?? 8080}/boot.ipxe`);
    if (options.boot.uefi64) args.push(`--dhcp-boot=tag:efi64,${options.boot.uefi64}`);
    if (options.boot.bios) args.push(`--dhcp-boot=tag:!efi64,${options.boot.bios}`);
  }
  const child = bootLab.spawn('pxe-dnsmasq', bootLab.serverNs, 'dnsmasq', args);
  let readyResolve!: () => void;
  const readyPromise = new Promise<void>((r) => (readyResolve = r));
  child.stderr?.on('data', (chunk: Buffer) => {
    if (/started, version/.test(chunk.toString())) readyResolve();
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    if (/started, version/.test(chunk.toString())) readyResolve();
  });
  return { kind: 'dnsmasq', label: 'dnsmasq (reference)', events: [], ready: () => waitForServer(child, readyPromise, bootLab, options) };
}

export function startPxeServer(bootLab: BootLab, options: ServerOptions): RunningServer {
  return labServerKind() === 'dnsmasq' ? startDnsmasqPxe(bootLab, options) : startBootbench(bootLab, options);
}

async function waitForServer(child: ChildProcess, ready: Promise<void>, bootLab: BootLab, options: ServerOptions): Promise<void> {
  // Also accept "listening on port 67" as ready, for a CLI that prints no state event:
  // poll the socket table in the namespace.
  let stopPolling = false;
  const listening = new Promise<void>((resolve) => {
    const poll = (): void => {
      if (stopPolling || child.exitCode !== null) return;
      try {
        const out = bootLab.lab.exec(bootLab.serverNs, 'ss', ['-lunH']);
        const wanted = options.mode === 'proxy' ? [':4011', ':69'] : [':67', ':69'];
        if (wanted.every((port) => out.includes(`${port} `))) return resolve();
      } catch {
        /* ss missing: rely on the ready message */
      }
      setTimeout(poll, 100);
    };
    poll();
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`PXE server exited with ${code} before it was ready\n${bootLab.processReport()}`))),
  );
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`PXE server not ready after 20 s\n${bootLab.processReport()}`)), 20_000).unref(),
  );
  try {
    await Promise.race([ready, listening, exited, timeout]);
  } finally {
    stopPolling = true;
  }
  if (child.exitCode !== null) throw new Error(`PXE server exited with ${child.exitCode}\n${bootLab.processReport()}`);
}
