// The service host: owns the configuration, starts and stops Proxy DHCP / DHCP, the PXE
// boot server, TFTP and HTTP as one unit on the chosen NIC, and publishes every event on
// one bus. `bootbench serve`, the Electron main process and the tests all run this class.
import { isAbsolute, join, relative, resolve } from 'node:path';
import { accessSync, constants as fsConstants, mkdirSync, realpathSync, statSync } from 'node:fs';
import { EventBus, isTransferEventType, type Publish, type TransferFields, systemClock, type Clock, silentLogger, type Logger } from '../core/index.js';
import type { ServiceName, ServiceStatus, ServicesStatus, TransferRow as TransferSnapshot, BootProgramStatus } from '../../preload/api.js';
import { ClientDirectory } from './client-directory.js';
import { TransferTable } from './transfer-table.js';
import { libraryAssignments } from './library-assignments.js';
import {
  ConfigError,
  bootFilesWithHttpBoot,
  checkPoolAgainstInterface,
  defaultServedFolder,
  imagingMulticastChoice,
  prefixToNetmask,
  type ServeConfig,
} from './config.js';
import {
  type UdpSocketFactory,
  type InterfaceChange,
  type NetInterface,
  createScopedUdpSocketFactory,
  resolveServeInterface,
  watchInterface,
  IgmpQuerier,
} from '../net/index.js';
import { DhcpService, DhcpThread, DhcpThreadUnavailable } from '../dhcp/index.js';
import { TftpServer, shortAbandonPolicy } from '../tftp/index.js';
import { HttpFileServer, scriptFileRoute } from '../http/index.js';
import { FileResolver } from '../files/index.js';
import { attachStoreToBus, forgetIgmpListening, recordIgmpListening, recordIgmpQuerierHeard, type Store, type StoreBusAttachment } from '../store/index.js';
import { AnswerFileService, LibraryBootService, ensureLocalDiskEntry, chainloadBootPrograms, chainloadPolicy, locateBootBinary } from '../library/index.js';
import { ImagingService, type StreamStats } from '../imaging/index.js';

// The status and transfer shapes are the UI contract's (declared once, in preload/api.ts).
export type { ServiceName, ServiceStatus, ServicesStatus, TransferRow as TransferSnapshot } from '../../preload/api.js';

export interface ServiceHostOptions {
  config: ServeConfig;
  bus?: EventBus;
  logger?: Logger;
  clock?: Clock;
  /** Sockets for DHCP/4011/TFTP; default: scoped to the chosen NIC. */
  socketFactory?: UdpSocketFactory;
  /** NIC lookup; tests may inject one. */
  resolveInterface?: (name: string | undefined) => NetInterface;
  /** Machines, transfers and the boot timeline are recorded here when given. */
  store?: Store;
  /** Per-machine boot assignments (the store). */
  lookupMachine?: ConstructorParameters<typeof DhcpService>[0]['policy']['lookupMachine'];
  /** Follow the served NIC and restart on it when it comes back (default: on, unless resolveInterface is injected). */
  watchInterface?: boolean;
  /**
   * DHCP and the boot server on a thread of their own (main/dhcp/dhcp-thread.ts). Default: on,
   * unless sockets or lookups are injected (tests of the service itself keep it in this thread)
   * or the environment says BOOTBENCH_DHCP_THREAD=0 (to compare, or to rule the thread out).
   */
  dhcpThread?: boolean;
  /** The bundled boot programs' folder (default: resources/boot of this installation); tests inject one. */
  resourcesDir?: string;
}

interface Running {
  nic: NetInterface;
  address: string;
  dhcp?: DhcpService | DhcpThread;
  tftp?: TftpServer;
  http?: HttpFileServer;
  library?: LibraryBootService;
  imaging?: ImagingService;
  files?: FileResolver;
  unsubscribe: (() => void)[];
}

export class ServiceHost {
  readonly bus: EventBus;
  readonly store?: Store;
  private readonly recorder?: StoreBusAttachment;
  private currentConfig: ServeConfig;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly clients = new ClientDirectory();
  private readonly transfers = new TransferTable();
  private running: Running | undefined;
  private statuses: ServiceStatus[] = [];
  private problems: string[] = [];
  private transition: Promise<unknown> = Promise.resolve();
  private starts = 0;

  constructor(private readonly options: ServiceHostOptions) {
    this.currentConfig = options.config;
    this.clock = options.clock ?? systemClock;
    this.bus = options.bus ?? new EventBus(() => this.clock.now());
    this.logger = options.logger ?? silentLogger;
    this.bus.subscribe((event) => {
      this.clients.observe(event);
      this.transfers.observe(event);
      // History going off or on is part of the host's state: the UI shows it with the problems.
      if (event.type === 'store.degraded' || event.type === 'store.recovered') this.publishState();
    });
    if (options.store) {
      this.store = options.store;
      this.recorder = attachStoreToBus(this.bus, options.store, { clock: this.clock, logger: this.logger });
    }
  }

  /** Stops the services, writes what the store has waiting and closes it. */
  async close(): Promise<void> {
    await this.stop();
    this.recorder?.close();
  }

  config(): ServeConfig {
    return structuredClone(this.currentConfig);
  }

  /** The multicast stream of a deploy job while the running host sends it. */
  imagingStream(jobId: number): StreamStats | undefined {
    return this.running?.imaging?.streamNow(jobId);
  }

  /** Why the running host sends deploys to several PCs by unicast (the multicast setting), if it does. */
  imagingUnicastReason(): string | undefined {
    return this.running?.imaging?.unicastReason;
  }

  status(): ServicesStatus {
    return {
      running: this.running !== undefined,
      interfaceName: this.running?.nic.name ?? this.currentConfig.interfaceName,
      address: this.running?.address,
      mode: this.currentConfig.mode,
      services: this.statuses.map((s) => ({ ...s })),
      problems: this.storeProblem() ? [...this.problems, this.storeProblem()!] : [...this.problems],
    };
  }

  /** Why boot history is not recorded right now (full disk under the database ...), with the fix. */
  storeProblem(): string | undefined {
    return this.recorder?.degradation?.message;
  }

  /**
   * The boot programs the bundled iPXE chain hands out, found or missing; empty when boot
   * files are set per class or by script (they come from the served folder), or when there
   * is no library to chain to.
   */
  bootPrograms(): BootProgramStatus[] {
    const c = this.currentConfig;
    if (!this.store || Object.keys(c.boot).length > 0 || c.ipxeScript) return [];
    return chainloadBootPrograms({ dataDir: c.dataDir, resourcesDir: this.options.resourcesDir }).map(({ firmware, file, path, missing, fix }) =>
      missing ? { firmware, file, problem: `${missing} Fix: ${fix}` } : { firmware, file, path },
    );
  }

  activeTransfers(): TransferSnapshot[] {
    return this.transfers.list();
  }

  macForIp = (ip: string): string | undefined => this.clients.macForIp(ip);

  /** Starts every service; on any failure the others are stopped again and the error is thrown. */
  start(overrides: Partial<ServeConfig> = {}): Promise<ServicesStatus> {
    return this.serialise(() => this.doStart(overrides));
  }

  stop(): Promise<ServicesStatus> {
    return this.serialise(() => this.doStop());
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.transition.then(fn, fn);
    this.transition = next.catch(() => undefined);
    return next;
  }

  private async doStart(overrides: Partial<ServeConfig>): Promise<ServicesStatus> {
    if (this.running) await this.doStop();
    const config: ServeConfig = { ...this.currentConfig, ...overrides, ports: { ...this.currentConfig.ports, ...overrides.ports } };
    this.currentConfig = config;
    this.problems = [];
    const statuses = this.plannedServices(config);
    this.statuses = statuses;
    this.publishState();

    try {
      const nic = (this.options.resolveInterface ?? resolveServeInterface)(config.interfaceName);
      const ipv4 = nic.ipv4[0];
      if (!ipv4) throw new ConfigError('--interface', `${nic.name} has no IPv4 address: give it one, or choose another NIC`);
      checkRoot(config.root, config.dataDir);
      if (config.mode === 'dhcp') {
        if (!config.pool) throw new ConfigError('--pool', '--mode dhcp needs --pool FIRST-LAST (addresses to hand out on the bench network)');
        checkPoolAgainstInterface(config.pool, ipv4.address, ipv4.prefixLength, nic.name);
      }
      const address = ipv4.address;
      this.running = { nic, address, unsubscribe: [] };
      const socketFactory = this.options.socketFactory ?? createScopedUdpSocketFactory();
      const publish = this.runScopedPublish();
      const files = createHostFileResolver(config.root);
      const httpBaseUrl = `http://${address}:${config.httpPort}`;
      const ipxeScriptPath = config.ipxeScript ? resolveInRoot(config.root, config.ipxeScript) : undefined;
      this.running.files = files;
      const imaging = this.store ? this.startImaging(files, config) : undefined;
      // Answer files are served only to the address the host saw their machine use in DHCP.
      const store = this.store;
      const answers = store
        ? new AnswerFileService({
            store,
            dataDir: config.dataDir,
            serverAddress: address,
            httpBaseUrl,
            macForIp: this.macForIp,
            publish,
            localDiskEntry: () => ensureLocalDiskEntry(store),
          })
        : undefined;
      const library = this.store ? await this.startLibrary(files, config, address, httpBaseUrl, publish, answers) : undefined;
      // With no boot file and no script given, every PXE client chainloads the bundled
      // iPXE and iPXE asks the library what to boot (the machine's entry, or the menu).
      const chainload = library && Object.keys(config.boot).length === 0 && !ipxeScriptPath ? chainloadPolicy(httpBaseUrl) : undefined;
      if (chainload) {
        for (const problem of await this.mountLibrary()) this.logger.warn(`chainloading iPXE needs ${problem}`);
        // Serving goes on (the other firmware family may boot), but the screens must not call
        // the bench ready while one family is handed a file that is not there.
        this.problems.push(...this.bootPrograms().flatMap((p) => (p.problem ? [p.problem] : [])));
      }
      const macForHttp = (ip: string) => this.macForIp(ip) ?? library?.reportedMacForIp(ip);
      const staticScript = ipxeScriptPath ? scriptFileRoute({ urlPath: '/boot.ipxe', file: ipxeScriptPath, macForIp: this.macForIp, publish }) : undefined;

      await this.startService('tftp', async () => {
        const tftp = new TftpServer({
          port: config.ports.tftp,
          address,
          socketFactory,
          files,
          maxBlksize: Math.max(512, (nic.mtu || 1500) - 32),
          macForIp: this.macForIp,
          publish,
          logger: this.logger,
          clock: this.clock,
          multicast: config.tftpMulticast,
          // The environment variable shortens the 60 s abandon for tests that cut a client off.
          retransmit: shortAbandonPolicy(process.env.BOOTBENCH_TFTP_ABANDON_SECONDS),
        });
        await tftp.start();
        this.running!.tftp = tftp;
      });

      await this.startService('http', async () => {
        const http = new HttpFileServer({
          port: config.httpPort,
          address,
          files,
          dynamic: async (req, res, url) =>
            (await imaging?.handle(req, res, url)) ||
            (await answers?.httpRoute(req, res, url)) ||
            (await library?.httpRoute(req, res, url)) ||
            (await staticScript?.(req, res, url)) ||
            false,
          macForIp: macForHttp,
          publish,
          logger: this.logger,
          clock: this.clock,
        });
        await http.start();
        this.running!.http = http;
      });

      const dhcpNames: ServiceName[] = config.mode === 'proxy' ? ['proxy-dhcp', 'pxe'] : ['dhcp', 'pxe'];
      await this.startService(dhcpNames, async () => {
        const service = {
          mode: config.mode,
          serverAddress: address,
          interfaceName: nic.name,
          ports: { server: config.ports.dhcp, pxe: config.ports.pxe, client: config.ports.dhcpClient },
          policy: {
            serverAddress: address,
            httpBaseUrl,
            boot: bootFilesWithHttpBoot(chainload?.boot ?? config.boot, config.httpBoot),
            ipxeScriptUrl: ipxeScriptPath ? `${httpBaseUrl}/boot.ipxe` : chainload?.ipxeScriptUrl,
            menu: config.menu,
            menuTimeoutSeconds: config.menuTimeoutSeconds,
            answerHttpBoot: config.httpBoot?.answer,
          },
          pool:
            config.mode === 'dhcp' && config.pool
              ? {
                  first: config.pool.first,
                  last: config.pool.last,
                  subnetMask: prefixToNetmask(ipv4.prefixLength),
                  router: config.router,
                  dns: config.dns,
                  leaseSeconds: config.leaseSeconds,
                }
              : undefined,
          leaseFile: join(config.dataDir, 'leases.json'),
          force: config.force,
          addressCheck: config.addressCheck,
        };
        const assignments = library
          ? libraryAssignments({
              store: this.store!,
              library,
              httpBaseUrl,
              haveStaticScript: !!ipxeScriptPath,
              signedChainForImaging: config.mode === 'dhcp' && this.signedChainAvailable(config),
              imagingMacs: () => this.running?.imaging?.pendingMacs() ?? new Set<string>(),
              imagingAnyMachine: () => this.running?.imaging?.waitingForAnyMachine() ?? false,
            })
          : undefined;
        if (this.options.dhcpThread ?? (!this.options.socketFactory && !this.options.lookupMachine && process.env.BOOTBENCH_DHCP_THREAD !== '0')) {
          const thread = new DhcpThread({
            service,
            assignments,
            publish,
            publishAt: this.bus.publishAt,
            logger: this.logger,
            onGaveUp: (reason) => {
              for (const st of this.statuses) if (dhcpNames.includes(st.name)) Object.assign(st, { state: 'failed', error: reason });
              this.publishState();
            },
          });
          try {
            await thread.start();
            this.running!.dhcp = thread;
            return;
          } catch (err) {
            if (!(err instanceof DhcpThreadUnavailable)) throw err;
            this.logger.warn(`${err.message}; DHCP is answered on the main thread instead`);
          }
        }
        const dhcp = new DhcpService({
          ...service,
          socketFactory,
          policy: { ...service.policy, lookupMachine: this.options.lookupMachine ?? assignments?.lookup },
          publish,
          logger: this.logger,
          clock: this.clock,
        });
        await dhcp.start();
        this.running!.dhcp = dhcp;
      });
    } catch (err) {
      const message = (err as Error).message;
      this.problems.push(message);
      for (const s of this.statuses) if (s.state !== 'failed') s.state = 'stopped';
      await this.stopServices();
      this.running = undefined;
      this.publishState();
      throw err;
    }
    if (this.options.watchInterface ?? !this.options.resolveInterface) this.running.unsubscribe.push(this.watchServedInterface(this.running.nic.name));
    this.publishState();
    return this.status();
  }

  /**
   * Follows the served NIC (main/net's watchInterface). A link going down and up needs
   * nothing (device-bound sockets keep working), but a NIC deleted and re-created (USB
   * replug: new ifindex) leaves them deaf, and a new address leaves TFTP/HTTP bound to the
   * old one: then the services are restarted on the NIC, by themselves. Each change is a
   * host.warning, so the UI and the log show why clients stopped or started booting.
   */
  private watchServedInterface(name: string): () => void {
    const warn = (message: string) => {
      this.logger.warn(message);
      this.bus.publish('host.warning', { message, interfaceName: name });
    };
    const onChange = (change: InterfaceChange) => {
      if (change.kinds.includes('gone')) warn(`${name} disappeared: clients on it cannot boot; services restart when it is back`);
      else if (change.kinds.includes('link-down')) warn(`${name} lost its link: clients on it cannot boot until the cable is back`);
      const comesBack = change.reopenSockets || change.kinds.includes('addresses');
      if (comesBack && change.current?.ipv4.length) {
        warn(`${name} is back (${change.kinds.join(', ')}): restarting the services on it`);
        this.start().catch((err) => this.logger.error(`restarting on ${name} failed: ${(err as Error).message}`));
      } else if (change.kinds.includes('link-up')) {
        warn(`${name} has its link back: serving again`);
      }
    };
    const watch = watchInterface(name, onChange, { clock: this.clock });
    return () => watch.stop();
  }

  /**
   * The library's part of the running host: iPXE/shim/GRUB binaries and entry files in the
   * file namespace, boot-once bookkeeping from transfer events.
   */
  private async startLibrary(
    files: FileResolver,
    config: ServeConfig,
    address: string,
    httpBaseUrl: string,
    publish: Publish,
    answers?: AnswerFileService,
  ): Promise<LibraryBootService> {
    const library = new LibraryBootService({
      store: this.store!,
      dataDir: config.dataDir,
      httpBaseUrl,
      serverAddress: address,
      httpPort: config.httpPort,
      resourcesDir: this.options.resourcesDir,
      macForIp: this.macForIp,
      publish,
      taskScript: (mac) => this.running?.imaging?.ipxeScript(mac, httpBaseUrl),
      taskKernel: (mac) => this.running?.imaging?.grubKernel(mac, httpBaseUrl),
      answers: answers?.decorate,
    });
    this.running!.library = library;
    await this.mountLibrary();
    this.running!.unsubscribe.push(this.bus.subscribe(library.onTransferEvent));
    return library;
  }

  /**
   * Imaging jobs, the agent's routes and the imaging environment's files. A PC whose deploy
   * or capture ended well and whose job says "then disk" is set to boot its own disk.
   */
  private startImaging(files: FileResolver, config: ServeConfig): ImagingService {
    const store = this.store!;
    // The environment variable shortens the silence limit for tests that switch a PC off.
    const silence = Number(process.env.BOOTBENCH_IMAGING_SILENCE_SECONDS);
    const multicast = imagingMulticastChoice(config);
    const imaging = new ImagingService({
      store,
      dataDir: config.dataDir,
      logger: this.logger,
      clock: this.clock,
      silenceSeconds: silence > 0 ? silence : undefined,
      // A deploy to several PCs streams by multicast on a bench network (full DHCP mode); in
      // proxy mode the NIC is on someone's office network, where that needs an explicit choice.
      stream: multicast.stream
        ? { address: this.running!.address, rate: config.imagingMaxRate ? { maxRate: config.imagingMaxRate } : undefined, querier: this.startQuerier() }
        : undefined,
      unicastReason: multicast.stream ? undefined : multicast.reason,
      onProgress: (job, mac, phase) => {
        // A failure's reason goes on the machine's timeline with it.
        const reason = phase === 'failed' ? imaging.jobs.get(job.id)?.machines.find((m) => m.mac === mac)?.reason : undefined;
        this.bus.publish('imaging.progress', { mac, job: job.id, kind: job.kind, image: job.image, phase, ...(reason ? { reason } : {}) });
        if (phase !== 'done' || job.then !== 'disk') return;
        const machine = store.machines.findByMac(mac) ?? store.machines.upsertSeen({ mac, time: this.clock.now() }).machine;
        store.machines.update(machine.id, { entryId: ensureLocalDiskEntry(store).id, bootOnce: false });
      },
    });
    imaging.recover();
    imaging.watch();
    this.running!.unsubscribe.push(() => imaging.stop());
    const missing = imaging.mountInto(files);
    if (missing) this.logger.debug(`imaging: no ${missing}`);
    this.running!.imaging = imaging;
    return imaging;
  }

  /**
   * The IGMP querier on the served NIC: it listens for other queriers while the host serves
   * and sends queries while a deploy streams, so snooping switches without a querier keep
   * forwarding the stream. BOOTBENCH_IGMP_QUERIER=off keeps it listening only.
   */
  private startQuerier(): IgmpQuerier {
    const r = this.running!;
    const store = this.store;
    const nic = r.nic.name;
    // What it hears goes to the store, where `bootbench doctor` reads it: its own few seconds of listening often miss a querier.
    const record = (what: string, write: (db: NonNullable<typeof store>['db']) => void) => {
      if (!store) return;
      try {
        write(store.db);
      } catch (error) {
        this.logger.debug(`IGMP: ${what} could not be recorded in the store: ${(error as Error).message}`);
      }
    };
    const querier = new IgmpQuerier({
      interfaceName: nic,
      address: r.address,
      logger: this.logger,
      mode: process.env.BOOTBENCH_IGMP_QUERIER === 'off' ? 'off' : 'auto',
      onHeard: (from, at) => record('the querier heard', (db) => recordIgmpQuerierHeard(db, { interfaceName: nic, pid: process.pid, querier: from, at })),
    });
    if (querier.listening) record('the listen', (db) => recordIgmpListening(db, { interfaceName: nic, pid: process.pid, since: this.clock.now() }));
    r.unsubscribe.push(() => {
      querier.close();
      record('the end of the listen', (db) => forgetIgmpListening(db, nic, process.pid));
    });
    return querier;
  }

  /**
   * Puts the library's files (bundled boot binaries, entry files, files inside ISOs) into
   * the TFTP/HTTP namespace. Called at start and again after entries were imported while
   * serving, so new entries boot without a restart.
   */
  async mountLibrary(): Promise<string[]> {
    const r = this.running;
    if (!r?.library || !r.files) return [];
    const problems = r.library.mountInto(r.files);
    r.library.locateInto(r.files);
    for (const problem of problems) this.logger.debug(`library: ${problem}`);
    return problems;
  }

  /** Shim and the signed GRUB it loads, both found (bundled or in the data folder). */
  private signedChainAvailable(config: ServeConfig): boolean {
    const dirs = { dataDir: config.dataDir, resourcesDir: this.options.resourcesDir };
    return !!locateBootBinary('shim', dirs).path && !!locateBootBinary('grub', dirs).path;
  }

  private plannedServices(config: ServeConfig): ServiceStatus[] {
    const first: ServiceStatus =
      config.mode === 'proxy' ? { name: 'proxy-dhcp', port: config.ports.dhcp, state: 'stopped' } : { name: 'dhcp', port: config.ports.dhcp, state: 'stopped' };
    return [
      first,
      { name: 'pxe', port: config.ports.pxe, state: 'stopped' },
      { name: 'tftp', port: config.ports.tftp, state: 'stopped' },
      { name: 'http', port: config.httpPort, state: 'stopped' },
    ];
  }

  private async startService(names: ServiceName | ServiceName[], start: () => Promise<void>): Promise<void> {
    const list = Array.isArray(names) ? names : [names];
    const entries = this.statuses.filter((s) => list.includes(s.name));
    for (const s of entries) s.state = 'starting';
    try {
      await start();
      for (const s of entries) s.state = 'running';
    } catch (err) {
      for (const s of entries) {
        s.state = 'failed';
        s.error = (err as Error).message;
      }
      throw err;
    } finally {
      this.publishState();
    }
  }

  private async doStop(): Promise<ServicesStatus> {
    await this.stopServices();
    this.running = undefined;
    for (const s of this.statuses) if (s.state !== 'failed') s.state = 'stopped';
    this.transfers.clear();
    this.publishState();
    return this.status();
  }

  private async stopServices(): Promise<void> {
    const r = this.running;
    if (!r) return;
    for (const unsubscribe of r.unsubscribe.splice(0)) unsubscribe();
    const results = await Promise.allSettled([r.dhcp?.stop(), r.tftp?.stop(), r.http?.stop()]);
    for (const result of results) if (result.status === 'rejected') this.logger.warn(`stopping a service failed: ${(result.reason as Error).message}`);
  }

  /**
   * The bus's publish with each transfer id made unique to this start: the servers count
   * transfers from 1 again at every start, and the history keeps transfers across restarts.
   */
  private runScopedPublish(): Publish {
    const run = `${this.clock.now().toString(36)}.${(++this.starts).toString(36)}`;
    let generated = 0;
    return (type, fields) => {
      if (isTransferEventType(type)) {
        // `fields` is BootEventFields[T] for the generic T, which the check above cannot narrow.
        const transfer = fields as TransferFields;
        if (transfer.transferId !== undefined) fields = { ...transfer, transferId: `${run}.${transfer.transferId}` } as typeof fields;
        else if (type === 'http.done' && transfer.generated) fields = { ...transfer, transferId: `${run}.generated-${++generated}` } as typeof fields;
      }
      this.bus.publish(type, fields);
    };
  }

  private publishState(): void {
    this.bus.publish('service.state', { status: this.status() });
  }
}

/**
 * The resolver TFTP and HTTP share. Files with several hard links are refused: a hard link
 * in the root to a file outside it (same file system) cannot be told apart from a file that
 * belongs there, and such a link would serve a file from outside the root. Boot files are copied or symlinked in; a refusal names the reason.
 */
export function createHostFileResolver(root: string): FileResolver {
  return new FileResolver({ roots: [root], caseInsensitive: true, allowHardLinks: false });
}

function checkRoot(root: string, dataDir: string): void {
  if (!root) throw new ConfigError('--root', '--root is required: the folder whose files TFTP and HTTP serve (read-only)');
  // The default folder is the library's own: made on first use rather than refused.
  if (resolve(root) === defaultServedFolder(dataDir)) {
    try {
      mkdirSync(root, { recursive: true });
    } catch (err) {
      throw new ConfigError(
        '--root',
        `--root ${root} cannot be created (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): choose a folder Bootbench may write, or another data folder`,
      );
    }
  }
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    throw new ConfigError('--root', `--root ${root} does not exist: give the folder that holds your boot files`);
  }
  if (!isDir) throw new ConfigError('--root', `--root ${root} is a file, not a folder: give the folder that holds your boot files`);
  try {
    accessSync(root, fsConstants.R_OK | fsConstants.X_OK);
  } catch {
    throw new ConfigError(
      '--root',
      `--root ${root} cannot be read by Bootbench (permissions): let the user running Bootbench read it, or choose another folder`,
    );
  }
  // The data folder holds the database and the answer files (passwords): a served folder
  // around it would hand them to anyone on the network by TFTP.
  const real = (path: string) => {
    try {
      return realpathSync(path);
    } catch {
      return resolve(path);
    }
  };
  const inside = relative(real(root), real(dataDir));
  if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) {
    throw new ConfigError(
      '--root',
      `--root ${root} contains the data folder ${dataDir} (its database and answer files would be served): choose a folder that does not hold it, such as ${defaultServedFolder(dataDir)}`,
    );
  }
}

function resolveInRoot(root: string, path: string): string {
  return isAbsolute(path) ? path : resolve(root, path);
}
