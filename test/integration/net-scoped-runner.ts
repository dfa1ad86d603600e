// Runs inside a test namespace (`ip netns exec NS node --import tsx net-scoped-runner.ts ...`)
// and prints one JSON line per thing it saw, for test/integration/net-*.test.ts.
//
//   server <interface|-> <port> <replyPort>   answer every datagram with "answer:<payload>"
//                                              broadcast to 255.255.255.255:<replyPort>
//   client <interface> <port> <payload> <listenPort> <ms>
//                                              broadcast <payload> to 255.255.255.255:<port>
//                                              from <listenPort>, report all that arrives
//   open <interface|-> <port> [reuse]          try to open a socket, report the result
//   list                                       listInterfaces() and resolveServeInterface()
import type { Socket } from 'node:dgram';
import { createScopedUdpSocketFactory, listInterfaces, resolveServeInterface } from '../../main/net/index.js';

const factory = createScopedUdpSocketFactory();
const [command, ...args] = process.argv.slice(2);
const print = (value: object) => process.stdout.write(`${JSON.stringify(value)}\n`);
const ifaceArg = (value: string | undefined) => (value === '-' || value === undefined ? undefined : value);

async function server(interfaceName: string | undefined, port: number, replyPort: number): Promise<void> {
  const socket = await factory({ port, interfaceName, broadcast: true });
  socket.on('message', (message, from) => {
    print({ event: 'request', from: from.address, port: from.port, payload: message.toString() });
    socket.send(Buffer.from(`answer:${message.toString()}`), replyPort, '255.255.255.255', (error) => {
      print(error ? { event: 'send-error', code: (error as NodeJS.ErrnoException).code } : { event: 'replied' });
    });
  });
  print({ event: 'ready', address: socket.address() });
}

async function client(interfaceName: string, port: number, payload: string, listenPort: number, ms: number): Promise<void> {
  const socket: Socket = await factory({ port: listenPort, interfaceName, broadcast: true });
  const received: { from: string; port: number; payload: string }[] = [];
  socket.on('message', (message, from) => received.push({ from: from.address, port: from.port, payload: message.toString() }));
  const errors: string[] = [];
  // Three tries, like a DHCP client, in case the server was a few ms late.
  for (let i = 0; i < 3; i++) {
    socket.send(Buffer.from(payload), port, '255.255.255.255', (error) => {
      if (error) errors.push((error as NodeJS.ErrnoException).code ?? error.message);
    });
    await new Promise((r) => setTimeout(r, ms / 3));
  }
  socket.close();
  print({ event: 'done', received, errors });
}

async function open(interfaceName: string | undefined, port: number, reuse: boolean): Promise<void> {
  try {
    const socket = await factory({ port, interfaceName, reuseAddress: reuse });
    print({ ok: true, address: socket.address() });
    socket.close();
  } catch (error) {
    const e = error as Error & { code?: string; port?: number; owners?: unknown };
    print({ ok: false, name: e.name, message: e.message, code: e.code, port: e.port, owners: e.owners });
  }
}

function list(): void {
  let serve: unknown;
  try {
    serve = { name: resolveServeInterface(undefined).name };
  } catch (error) {
    serve = { error: (error as Error).message };
  }
  print({ interfaces: listInterfaces(), serve });
}

switch (command) {
  case 'server':
    await server(ifaceArg(args[0]), Number(args[1]), Number(args[2]));
    break;
  case 'client':
    await client(args[0]!, Number(args[1]), args[2]!, Number(args[3]), Number(args[4]));
    break;
  case 'open':
    await open(ifaceArg(args[0]), Number(args[1]), args[2] === 'reuse');
    break;
  case 'list':
    list();
    break;
  default:
    console.error(`unknown command ${command}`);
    process.exit(2);
}
