// `bootbench`: the headless service host and its helper commands.
//   bootbench serve        run Proxy DHCP / DHCP, the boot server, TFTP and HTTP on one NIC
//   bootbench interfaces   list the NICs
//   bootbench doctor       what would stop `serve` from working
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BOOT_CLASSES, ConfigError, defaultServeConfig, ServiceHost, configFromSettings, saveConfigToSettings } from '../host/index.js';
import { SERVE_OPTIONS, UsageError, defaultDataDir, parseFlags, serveConfigFromFlags } from './serve-flags.js';
import { isPerRequestDhcpEvent, PerSecondBudget, type Logger, type BootEvent } from '../core/index.js';
import { listInterfaces } from '../net/index.js';
import { runDoctor, runTestBootFindings } from './doctor.js';
import { classifyWriteFailure, openStore, type Store } from '../store/index.js';
import { entriesCommand } from './entries.js';
import { imageCommand, machinesCommand } from './imaging.js';
import { runWebMode } from './web.js';
import { wakeCommand } from './wake.js';

const USAGE = `Usage: bootbench <command> [options]

Commands:
  serve        Run the network-boot services on one NIC (see bootbench serve --help)
  interfaces   List network interfaces (name, addresses, MAC, link, kind)
  doctor       Report what would stop \`serve\` from working on this machine
  entries      Import boot files into the library, or list it (entries import PATH... | entries list)
  image        Capture a PC's disk, deploy an image to PCs, list, verify, delete (image --help)
  machines     Import the machine list from CSV, or list it (machines import FILE.csv | machines list)
  wake         Wake PCs with Wake-on-LAN (wake MAC... | wake --group NAME)
  app          The host with its user interface in a browser (what \`npm start\` runs without Electron)

Run \`bootbench <command> --help\` for a command's options.`;

const SERVE_USAGE = `Usage: bootbench serve [options]

Runs Proxy DHCP (or full DHCP), the PXE boot server (UDP 4011), TFTP (UDP 69) and HTTP
on the chosen NIC only. Settings stored by the app are the defaults; flags override them.

Options:
  --interface NAME       NIC to serve on (required when more than one NIC could serve)
  --mode proxy|dhcp      proxy: beside an existing DHCP server, never hands out addresses (default)
                         dhcp: full DHCP server for an isolated bench switch (needs --pool)
  --pool FIRST-LAST      addresses to hand out in dhcp mode, e.g. 192.0.2.100-192.0.2.150
  --lease-time SECONDS   dhcp mode lease time (default 3600)
  --router ADDRESS       dhcp mode: default gateway to hand out (optional)
  --dns ADDRESS[,..]     dhcp mode: DNS servers to hand out (optional)
  --force                dhcp mode: start even if another DHCP server answers on the NIC
  --no-address-check     dhcp mode: offer addresses without first checking (ARP, or ping where
                         ARP is not allowed) that no other machine on the NIC already uses them
  --root DIR             folder served read-only by TFTP and HTTP (default: the one last used,
                         else the library folder in the data folder, made when missing)
  --boot CLASS=PATH      boot file per client class (repeatable; default: chainload the bundled
                         iPXE, which boots what the library assigns); CLASS is one of
                         ${BOOT_CLASSES.join(', ')};
                         PATH is relative to --root, or a URL for http64/httparm64
  --menu LABEL=PATH      a line of the PXE boot menu shown by BIOS firmware (repeatable, at
                         least two; LABEL= with no path boots the local disk)
  --menu-timeout SECONDS how long the menu waits before its first line (default 10; 255 = forever)
  --ipxe-script PATH     iPXE script that iPXE clients fetch over HTTP (relative to --root or absolute)
  --http-boot on|off     answer UEFI PCs whose firmware boots over HTTP (HTTPClient); default on
  --http-boot-file PATH  what x64 UEFI HTTP boot gets: a path in --root or an http:// URL (default:
                         the same program as UEFI PXE PCs; an empty PATH goes back to that)
  --http-port N          HTTP port (default 8080)
  --tftp-multicast       RFC 2090 multicast TFTP: clients asking for the same file with the
                         multicast option share one stream (TTL 1, this NIC only); off by default
  --tftp-multicast-group ADDRESS[:PORT]
                         first session's group (default 239.255.69.1:1758; implies --tftp-multicast);
                         each further file sent at once takes the next address and port
  --tftp-multicast-wait SECONDS
                         a new multicast session's first block waits this long for the
                         other clients to join (default 0; implies --tftp-multicast)
  --max-rate RATE        cap on a deploy's multicast image stream, bits per second on the line (e.g. 400M,
                         1G; default 1G); the stream adapts to loss below it
  --multicast auto|on|off
                         send a deploy to several PCs once, as a multicast stream: auto (default)
                         in --mode dhcp only; on also in proxy mode (an office network: only if
                         its network team agrees, since every switch port that asks gets it); off
                         sends each PC its own copy by HTTP. While streaming, Bootbench sends IGMP
                         queries if no querier is heard, so snooping switches keep forwarding
  --data DIR             database folder (default ~/.bootbench)
  --log text|json        text lines on stderr (default), or one JSON event per line on stdout;
                         DHCP packets beyond 400 a second (a storm) are counted, not logged
  -h, --help             show this help`;

function textLine(event: BootEvent): string {
  const { type, time, mac, ip, ...details } = event;
  const parts = Object.entries(details)
    .filter(([, v]) => v !== undefined && typeof v !== 'object')
    .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : v}`);
  return `${new Date(time).toISOString()} ${type}${mac ? ` ${mac}` : ''}${ip ? ` ${ip}` : ''} ${parts.join(' ')}`.trimEnd();
}

/**
 * Log lines and events (stdout JSON, or stderr text) written once per turn of the event loop
 * instead of once per line: to a pipe that is a blocking write(2) on Linux, and one per event
 * (two per DHCP request) cost more than answering the request in a DISCOVER storm's
 * profile. Order is kept: log lines and events of one stream share one queue. What is still
 * waiting when the process ends (an uncaught error included) is written on 'exit'.
 */
function createBatchedLineWriter(out: NodeJS.WritableStream): (line: string) => void {
  let waiting: string[] = [];
  const writeWaiting = () => {
    if (waiting.length === 0) return;
    const text = waiting.join('');
    waiting = [];
    out.write(text);
  };
  process.on('exit', writeWaiting);
  return (line) => {
    if (waiting.length === 0) setImmediate(writeWaiting);
    waiting.push(line);
  };
}

function makeLogger(format: 'text' | 'json', writeLine: (line: string) => void): Logger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    if (format === 'json') writeLine(JSON.stringify({ type: 'log', level, message, time: Date.now(), ...fields }) + '\n');
    else writeLine(`${level}: ${message}\n`);
  };
  return {
    debug: () => {},
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

/** The next start's defaults are a convenience: a full disk under the database must not end a host that is serving. */
function saveSettingsOrWarn(store: Store, host: ServiceHost, logger: Logger): void {
  try {
    saveConfigToSettings(store, host.config());
  } catch (err) {
    const failure = classifyWriteFailure(err, store.path);
    logger.warn(`these settings were not saved as the next start's defaults: ${failure.problem}; to fix: ${failure.fix}`, { code: failure.code });
  }
}

/** A lab powering on logs far fewer; a DISCOVER storm (thousands a second) is summed up per second. */
const DHCP_LINES_PER_SECOND = 400;

async function serve(args: string[]): Promise<number> {
  const { values } = parseFlags(args, SERVE_OPTIONS);
  if (values.help) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const format = values.log ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`--log "${format}" is not allowed: use text or json`);
  const dataDir = values.data !== undefined ? resolve(values.data) : defaultDataDir();
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new UsageError(`--data ${dataDir} cannot be created (${(err as Error).message}): choose a writable folder`);
  }
  const writeLine = createBatchedLineWriter(format === 'json' ? process.stdout : process.stderr);
  const logger = makeLogger(format, writeLine);
  let store: Store | undefined;
  try {
    store = openStore(dataDir, { logger });
  } catch (err) {
    // A database we cannot use (newer version, damaged) is left untouched; boot service
    // still runs, without history, so a bench is never stopped by its log.
    logger.warn(`${(err as Error).message} -- serving without history`);
  }
  const config = serveConfigFromFlags(values, store ? configFromSettings(store, dataDir) : defaultServeConfig(dataDir));
  if (Object.keys(config.boot).length === 0 && !config.ipxeScript && !config.menu && !store) {
    throw new UsageError('nothing to boot: give at least one --boot CLASS=PATH (e.g. --boot bios=undionly.kpxe --boot uefi64=ipxe.efi) or --ipxe-script');
  }

  const host = new ServiceHost({ config, logger, store });
  const dhcpLines = new PerSecondBudget(DHCP_LINES_PER_SECOND, (left) =>
    logger.warn(
      `DHCP storm: ${left} more DHCP events in the last second were not logged (at most ${DHCP_LINES_PER_SECOND} a second are); every one was answered as usual`,
      { dhcpEventsNotLogged: left },
    ),
  );
  host.bus.subscribe((event) => {
    // The DHCP thread's own count of events it left out: counted with the log's.
    if (event.type === 'dhcp.storm') return dhcpLines.countLeftOut(event.eventsNotPublished, event.time);
    if (isPerRequestDhcpEvent(event.type) && !dhcpLines.admit()) return;
    if (format === 'json') writeLine(JSON.stringify(event) + '\n');
    else if (event.type !== 'tftp.progress' && event.type !== 'http.progress' && event.type !== 'tftp-multicast.progress' && event.type !== 'service.state')
      writeLine(textLine(event) + '\n');
  });

  try {
    const status = await host.start();
    const summary =
      `bootbench serving on ${status.interfaceName} (${status.address}) in ${status.mode} mode: ` +
      status.services.map((s) => `${s.name} ${s.port}`).join(', ');
    logger.info(summary, { status });
    if (store) saveSettingsOrWarn(store, host, logger);
  } catch (err) {
    logger.error((err as Error).message);
    await host.close();
    return err instanceof ConfigError ? 2 : 1;
  }

  await new Promise<void>((resolveStop) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info(`${signal} received: stopping`);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolveStop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await host.close();
  return 0;
}

function interfaces(args: string[]): number {
  const { values } = parseFlags(args, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    console.log('Usage: bootbench interfaces [--json]\n\nLists network interfaces: name, IPv4 addresses, MAC, link state and kind.');
    return 0;
  }
  const list = listInterfaces();
  if (values.json) {
    console.log(JSON.stringify(list, null, 2));
    return 0;
  }
  for (const nic of list) {
    const addrs = nic.ipv4.map((a) => `${a.address}/${a.prefixLength}`).join(' ') || 'no IPv4';
    console.log(
      `${nic.name.padEnd(16)} ${(nic.up ? 'up' : 'down').padEnd(5)} ${nic.kind.padEnd(9)} ${(nic.mac || '-').padEnd(18)} mtu ${String(nic.mtu).padEnd(6)} ${addrs}`,
    );
  }
  return 0;
}

async function doctor(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    interface: { type: 'string' },
    json: { type: 'boolean' },
    'test-boot': { type: 'boolean' },
    data: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(
      'Usage: bootbench doctor [--interface NAME] [--data DIR] [--json] [--test-boot]\n\nReports what would stop `bootbench serve` from working: privileges, ports in use, NIC problems,\nother DHCP/PXE servers answering on the NIC, whether an IGMP querier is heard there (a snooping switch\nneeds one for an image stream; Bootbench queries while it streams if none is: what a Bootbench host serving on the NIC\nhas heard, read from the data folder, else a 5 s listen), a firewall dropping the boot ports, a nearly full\ndisk under the database folder (--data, default ~/.bootbench).\n--test-boot: play a BIOS and a UEFI PXE client against the running `bootbench serve` on the NIC\n(offer, 4011 ACK, TFTP size probe, download) and report each step.',
    );
    return 0;
  }
  const findings = values['test-boot']
    ? await runTestBootFindings({ interfaceName: values.interface })
    : await runDoctor({ interfaceName: values.interface, dataDir: values.data !== undefined ? resolve(values.data) : defaultDataDir() });
  if (values.json) console.log(JSON.stringify(findings, null, 2));
  else for (const f of findings) console.log(`${f.level.toUpperCase().padEnd(5)} ${f.message}${f.fix ? `\n      fix: ${f.fix}` : ''}`);
  return findings.some((f) => f.level === 'error') ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'interfaces':
        return interfaces(rest);
      case 'doctor':
        return await doctor(rest);
      case 'entries':
        return await entriesCommand(rest);
      case 'image':
        return await imageCommand(rest);
      case 'machines':
        return await machinesCommand(rest);
      case 'app':
        return await runWebMode(rest);
      case 'wake':
        return await wakeCommand(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}": use serve, interfaces, doctor, entries or app`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`bootbench: ${err.message}\nRun \`bootbench ${command && !command.startsWith('-') ? `${command} ` : ''}--help\` for the options.`);
      return 2;
    }
    throw err;
  }
}

// Run directly (`node --import tsx main/cli/bootbench.ts serve ...`), not when imported by bin/ or tests.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
