// Runs inside a test namespace for test/integration/tftp-multicast-netns.test.ts:
//   node --import tsx tftp-multicast-runner.ts '<options-json>'
// starts a TftpServer on `address` (port 69) serving `root`, with the host's interface-scoped
// sockets on `interfaceName` when given, prints {event:'ready'} (or {event:'failed',message}),
// then every bus event as {event:'bus', ...}. SIGTERM stops the server and exits.
import { EventBus } from '../../main/core/events.js';
import { silentLogger } from '../../main/core/logger.js';
import { FileResolver } from '../../main/files/index.js';
import { createScopedUdpSocketFactory } from '../../main/net/index.js';
import { TftpServer, type TftpServerOptions } from '../../main/tftp/server.js';

const print = (value: object) => process.stdout.write(`${JSON.stringify(value)}\n`);

interface RunnerOptions {
  address: string;
  interfaceName?: string;
  root: string;
  port?: number;
  multicast: TftpServerOptions['multicast'];
  retransmit?: TftpServerOptions['retransmit'];
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2]) as RunnerOptions;
  const bus = new EventBus();
  bus.subscribe((e) => print({ ...e, event: 'bus' }));
  const scoped = options.interfaceName ? createScopedUdpSocketFactory() : undefined;
  const server = new TftpServer({
    port: options.port ?? 69,
    address: options.address,
    socketFactory: scoped && ((o) => scoped({ ...o, interfaceName: options.interfaceName })),
    files: new FileResolver({ roots: [options.root] }),
    publish: bus.publish,
    logger: silentLogger,
    multicast: options.multicast,
    retransmit: options.retransmit,
  });
  try {
    await server.start();
  } catch (err) {
    print({ event: 'failed', message: (err as Error).message });
    process.exit(0);
  }
  print({ event: 'ready', port: server.port });
  process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
}

void main();
