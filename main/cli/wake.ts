// `bootbench wake`: Wake-on-LAN from a script. It works on the data folder alone, beside a
// running `bootbench serve` on the same folder or without one: the machine list and the
// stored NIC are read from the database, and each wake is recorded there, so the Timeline
// shows it (and, a minute later, whether the PC asked to boot).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { toApiMachine, wakeRequested, WakeRefusal, type WakeDeps } from '../api/index.js';
import { EventBus } from '../core/index.js';
import { configFromSettings } from '../host/index.js';
import { createScopedUdpSocketFactory, listInterfaces } from '../net/index.js';
import { attachStoreToBus, openStore, type Store } from '../store/index.js';
import { defaultDataDir } from './serve-flags.js';
import type { WakeResult } from '../../preload/api.js';

const USAGE = `Usage: bootbench wake (MAC... | --group NAME) [--interface NIC] [--data DIR] [--json]

Sends Wake-on-LAN magic packets through one NIC: to its directed broadcast and to
255.255.255.255, three rounds each. --group wakes every machine of that group in the
machine list. The wake is recorded in the data folder: the Timeline shows "woken", then
whether the PC asked to boot within a minute.

Options:
  --group NAME       every machine of this group (bootbench machines list shows them)
  --interface NIC    the NIC to send through (default: the one the services last used)
  --data DIR         data folder (default ~/.bootbench, or $BOOTBENCH_DATA)
  --json             machine-readable output
  -h, --help         show this help

Exits 2 for bad arguments (a MAC that is not one), 1 when nothing could be sent (unknown
group, the NIC is gone or down) or a packet did not leave.`;

export interface WakeCommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: WakeCommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** What tests replace: the NICs, the sockets, the pause between rounds. */
export type WakeCommandDeps = Partial<Pick<WakeDeps, 'interfaces' | 'socketFactory' | 'sleep'>>;

export async function wakeCommand(args: string[], io: WakeCommandIo = processIo, deps: WakeCommandDeps = {}): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        group: { type: 'string' },
        interface: { type: 'string' },
        data: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.stderr(`bootbench wake: ${(err as Error).message}\nRun \`bootbench wake --help\` for the options.\n`);
    return 2;
  }
  const { values, positionals: macs } = parsed;
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  const usage = (message: string) => {
    io.stderr(`bootbench wake: ${message}\nRun \`bootbench wake --help\` for the options.\n`);
    return 2;
  };
  if (macs.length === 0 && values.group === undefined) return usage('nothing to wake: give MAC addresses (52:54:00:12:34:56) or --group NAME');
  if (values.group !== undefined && values.group.trim() === '') return usage('--group needs a name');
  if (values.interface !== undefined && values.interface.trim() === '') return usage('--interface needs a NIC name (bootbench interfaces lists them)');

  const dataDir = values.data !== undefined ? resolve(values.data) : defaultDataDir();
  let store: Store | undefined;
  try {
    store = openStore(dataDir);
  } catch (err) {
    // Bare MACs can still be woken; a group needs the machine list.
    if (values.group !== undefined) {
      io.stderr(`bootbench wake: ${(err as Error).message}\n`);
      return 1;
    }
    io.stderr(`bootbench wake: warning: ${(err as Error).message}; waking without recording it\n`);
  }
  const bus = new EventBus();
  const recorder = store ? attachStoreToBus(bus, store) : undefined;
  let result: WakeResult;
  try {
    result = await wakeRequested(
      { macs, group: values.group, interfaceName: values.interface },
      {
        machines: store ? store.machines.list().map(toApiMachine) : [],
        interfaces: deps.interfaces ?? listInterfaces(),
        storedInterface: store ? configFromSettings(store, dataDir).interfaceName : undefined,
        socketFactory: deps.socketFactory ?? createScopedUdpSocketFactory(),
        sleep: deps.sleep,
        publish: bus.publish,
      },
    );
  } catch (err) {
    if (err instanceof WakeRefusal) {
      const code = err.code === 'invalid-request' && /not a MAC address|nothing to wake/.test(err.message) ? 2 : 1;
      if (code === 2) return usage(err.message);
      io.stderr(`bootbench wake: ${err.message}\n`);
      return code;
    }
    io.stderr(`bootbench wake: ${(err as Error).message}\n`);
    return 1;
  } finally {
    recorder?.detach();
    store?.close();
  }

  if (values.json) io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else io.stdout(describeWake(result));
  return result.machines.some((m) => m.error || m.sent === 0) ? 1 : 0;
}

function describeWake(result: WakeResult): string {
  const lines = [
    `woke ${result.machines.length} ${result.machines.length === 1 ? 'PC' : 'PCs'} through ${result.interfaceName} (${result.repeat} rounds to ${result.addresses.join(' and ')}):`,
  ];
  const width = Math.max(0, ...result.machines.map((m) => (m.name ?? '').length));
  for (const m of result.machines) {
    const what = m.error ? `${m.sent} packets; ${m.error}` : `${m.sent} packets`;
    lines.push(`  ${(m.name ?? '').padEnd(width)}${width ? '  ' : ''}${m.mac}  ${what}`);
  }
  lines.push(`The Timeline shows whether each asked to boot within ${Math.round(result.answerWithinMs / 1000)} s.`);
  return `${lines.join('\n')}\n`;
}
