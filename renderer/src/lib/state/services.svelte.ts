// The Start screen's state: NICs, mode, pool, and what every service is doing.
import type { ApiClient } from '../transport.js';
import type {
  DefaultBootChoice,
  HttpBootSetting,
  ImagingMulticastSetting,
  InterfacesList,
  NetInterfaceInfo,
  ServeMode,
  ServeSettings,
  ServicesStatus,
  StartRequest,
} from '../../../../preload/api.js';
import { suggestPool } from '../format.js';

const STOPPED: ServicesStatus = { running: false, mode: 'proxy', services: [], problems: [] };

export class ServicesState {
  status = $state.raw<ServicesStatus>(STOPPED);
  settings = $state.raw<ServeSettings | undefined>(undefined);
  interfaces = $state.raw<InterfacesList>({ interfaces: [] });
  interfaceName = $state('');
  mode = $state<ServeMode>('proxy');
  poolFirst = $state('');
  poolLast = $state('');
  /** The served folder as typed; sent with Start when it differs from the host's. */
  root = $state('');
  /** UEFI HTTP boot as chosen on the screen, sent with Start: answered or not, and what it boots. */
  httpBootAnswer = $state(true);
  httpBootWhat = $state<'same' | 'file'>('same');
  httpBootFile = $state('');
  /** A deploy to several PCs as one multicast stream, as chosen on the screen; sent with Start when it differs. */
  multicast = $state<ImagingMulticastSetting>('auto');
  /** The NIC the settings name that this computer no longer has (unplugged USB adapter, renamed). */
  goneInterface = $state<string | undefined>(undefined);
  /** The last failure to change the default boot, as the host worded it. */
  defaultBootError = $state<string | undefined>(undefined);
  busy = $state<'starting' | 'stopping' | undefined>(undefined);
  /** The last Start/Stop failure, as the host worded it. */
  error = $state<string | undefined>(undefined);
  /** False while the host cannot be reached: what it serves is unknown until it answers again. */
  reachable = $state(true);

  running = $derived(this.status.running);
  selectedInterface = $derived<NetInterfaceInfo | undefined>(this.interfaces.interfaces.find((n) => n.name === this.interfaceName));
  /** Problems to show: the host's, plus the last failure when the host did not list it. */
  problems = $derived(
    !this.reachable ? [] : this.error && !this.status.problems.includes(this.error) ? [...this.status.problems, this.error] : this.status.problems,
  );
  /** Full DHCP refused because another DHCP server answered: the technician may override. */
  canForce = $derived(!this.status.running && this.mode === 'dhcp' && this.problems.some((p) => /another DHCP server/i.test(p)));
  canStart = $derived(
    this.reachable &&
      !this.busy &&
      this.interfaceName !== '' &&
      this.root.trim() !== '' &&
      (this.mode === 'proxy' || (this.poolFirst !== '' && this.poolLast !== '')) &&
      !(this.httpBootAnswer && this.httpBootWhat === 'file' && this.httpBootFile.trim() === ''),
  );
  /** Boot programs the bundled iPXE chain needs and does not have (each with its fix). */
  missingPrograms = $derived((this.settings?.bootPrograms ?? []).filter((p) => p.problem));

  constructor(private readonly api: ApiClient) {}

  async load(): Promise<void> {
    const [status, settings, interfaces] = await Promise.all([
      this.api.call('services:status'),
      this.api.call('services:settings'),
      this.api.call('interfaces:list'),
    ]);
    // A fresh read of the host (it may have restarted): an earlier failure is no longer news.
    this.reachable = true;
    this.error = undefined;
    this.status = status;
    this.settings = settings;
    this.interfaces = interfaces;
    this.mode = status.running ? status.mode : settings.mode;
    this.root = settings.root;
    this.httpBootAnswer = settings.httpBoot?.answer ?? true;
    this.httpBootWhat = settings.httpBoot?.file ? 'file' : 'same';
    this.httpBootFile = settings.httpBoot?.file ?? '';
    this.multicast = settings.imagingMulticast ?? 'auto';
    if (!this.interfaceName) {
      const remembered = status.interfaceName ?? settings.interfaceName;
      // A remembered NIC that is gone is named as gone, not preselected: Start would fail on it.
      if (remembered && !status.running && !interfaces.interfaces.some((n) => n.name === remembered)) this.goneInterface = remembered;
      else this.interfaceName = remembered ?? interfaces.suggested?.name ?? '';
    }
    if (settings.pool) {
      this.poolFirst = settings.pool.first;
      this.poolLast = settings.pool.last;
    } else this.proposePool();
  }

  chooseInterface(name: string): void {
    this.interfaceName = name;
    this.goneInterface = undefined;
    this.proposePool(true);
  }

  /** Fills the pool from the chosen NIC's subnet (only when empty, unless forced). */
  proposePool(force = false): void {
    const address = this.selectedInterface?.ipv4[0];
    if (!address || (!force && this.poolFirst && this.poolLast)) return;
    const pool = suggestPool(address.address, address.prefixLength);
    if (pool) {
      this.poolFirst = pool.first;
      this.poolLast = pool.last;
    }
  }

  startRequest(force = false): StartRequest {
    return {
      interfaceName: this.interfaceName || undefined,
      mode: this.mode,
      pool: this.mode === 'dhcp' ? { first: this.poolFirst.trim(), last: this.poolLast.trim() } : undefined,
      ...(this.settings && this.root.trim() !== this.settings.root ? { root: this.root.trim() } : {}),
      ...(force ? { force: true } : {}),
      ...(this.httpBootChanged() ? { httpBoot: this.httpBootChoice() } : {}),
      ...(this.multicast !== (this.settings?.imagingMulticast ?? 'auto') ? { imagingMulticast: this.multicast } : {}),
    };
  }

  /** Whether deploys to several PCs stream under the chosen mode, and why not when they do not. */
  multicastNote(): { streams: boolean; text: string } {
    if (this.multicast === 'off') return { streams: false, text: 'Each PC gets its own copy of the image by HTTP.' };
    if (this.multicast === 'on' || this.mode === 'dhcp')
      return {
        streams: true,
        text: 'A deploy to several PCs is sent once, as a multicast stream (TTL 1, this NIC only). If no IGMP querier is heard, Bootbench sends queries while it streams so snooping switches keep forwarding.',
      };
    return {
      streams: false,
      text: 'Proxy mode: deploys go by unicast HTTP. Multicast on an office network reaches every switch port that asks for it; turn it on only if the network team agrees.',
    };
  }

  /** UEFI HTTP boot as the screen shows it. */
  httpBootChoice(): HttpBootSetting {
    const file = this.httpBootFile.trim();
    return this.httpBootAnswer && this.httpBootWhat === 'file' && file ? { answer: true, file } : { answer: this.httpBootAnswer };
  }

  /** Sent with Start only when it differs from the host's, like the served folder. */
  private httpBootChanged(): boolean {
    const host = this.settings?.httpBoot ?? { answer: true };
    const chosen = this.httpBootChoice();
    return chosen.answer !== host.answer || chosen.file !== host.file;
  }

  async start(force = false): Promise<void> {
    this.busy = 'starting';
    this.error = undefined;
    try {
      this.status = await this.api.call('services:start', this.startRequest(force));
    } catch (err) {
      this.error = (err as Error).message;
      await this.refresh();
    } finally {
      this.busy = undefined;
    }
    await this.reloadSettings();
  }

  /** The settings the host holds now (a start saves the served folder; boot programs are looked for again). */
  async reloadSettings(): Promise<void> {
    try {
      this.settings = await this.api.call('services:settings');
      if (this.status.running || !this.error) this.root = this.settings.root;
    } catch {
      /* the connection banner says why */
    }
  }

  async setDefaultBoot(choice: DefaultBootChoice): Promise<void> {
    this.defaultBootError = undefined;
    try {
      this.settings = await this.api.call('services:set-default-boot', choice);
    } catch (err) {
      this.defaultBootError = (err as Error).message;
    }
  }

  async stop(): Promise<void> {
    this.busy = 'stopping';
    this.error = undefined;
    try {
      this.status = await this.api.call('services:stop');
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.busy = undefined;
    }
  }

  async refresh(): Promise<void> {
    try {
      this.status = await this.api.call('services:status');
    } catch {
      /* the connection banner says why */
    }
  }

  /** A pushed 'services:state'. */
  apply(status: ServicesStatus): void {
    this.status = status;
    // Serving again (a restart on the NIC, a Start elsewhere): the last failure is fixed.
    if (status.running) this.error = undefined;
  }

  /** The connection to the host is lost: nothing it said before can be vouched for. */
  hostGone(): void {
    this.reachable = false;
    this.busy = undefined;
  }
}
