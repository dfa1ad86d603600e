// Child process for the store crash test: starts 20 transfers on the bus and writes their
// progress as fast as it can until it is killed. Prints "ready" once rows are on disk.
// Usage: node --import tsx test/helpers/store-crash-writer.ts DB_PATH
import { EventBus } from '../../main/core/events.js';
import { attachStoreToBus, openStore } from '../../main/store/index.js';

const path = process.argv[2];
if (!path) {
  console.error('usage: store-crash-writer.ts DB_PATH');
  process.exit(2);
}

const store = openStore(path);
const bus = new EventBus();
const recorder = attachStoreToBus(bus, store, { flushIntervalMs: 5, progressIntervalMs: 0 });
const TRANSFERS = 20;
for (let i = 0; i < TRANSFERS; i++) {
  bus.publish('dhcp.received', { mac: `52:54:00:00:10:${i.toString(16).padStart(2, '0')}`, ip: `192.0.2.${100 + i}`, msgType: 'DISCOVER', arch: 7 });
  bus.publish('tftp.start', {
    mac: `52:54:00:00:10:${i.toString(16).padStart(2, '0')}`,
    ip: `192.0.2.${100 + i}`,
    transferId: `t${i}`,
    file: `images/disk-${i}.img`,
    size: 100_000_000,
    options: { blksize: 1468, windowsize: 4, tsize: 100_000_000 },
  });
}

let bytes = 0;
let announced = false;
function writeMore(): void {
  bytes += 1468 * 4;
  for (let i = 0; i < TRANSFERS; i++) {
    bus.publish('tftp.progress', { ip: `192.0.2.${100 + i}`, transferId: `t${i}`, file: `images/disk-${i}.img`, bytes, retransmits: i % 3 });
  }
  recorder.flush();
  if (!announced) {
    announced = true;
    process.stdout.write('ready\n');
  }
  setImmediate(writeMore);
}
writeMore();
