// The chunk requests of the agent protocol over a real loopback server: a deploy's GET gives
// the stored bytes whole (by sendfile(2) on Linux, streamed where zeroCopy is off), a missing
// chunk is a 404, and a capture's uploads are stored exactly, one after another through the
// store's reused receive buffer, refused when damaged or too large.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageCatalog, ImagingJobs, ImagingRoutes } from '../../main/imaging/index.js';
import { MAX_CHUNK_BYTES } from '../../main/imaging/chunk-store.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { openStore, type Store } from '../../main/store/index.js';
import { makeTempDir } from '../helpers/store-temp.js';

const PC = '52:54:00:aa:20:01';
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function call(url: string, method: string, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (const zeroCopy of [true, false]) {
  describe(`imaging chunk requests (${zeroCopy ? 'sendfile where available' : 'streamed'})`, () => {
    let temp: ReturnType<typeof makeTempDir>;
    let store: Store;
    let catalog: ImageCatalog;
    let jobs: ImagingJobs;
    let routes: ImagingRoutes;
    let server: Server;
    let url = '';
    let job = 0;

    before(async () => {
      temp = makeTempDir('bootbench-imaging-chunks-');
      store = openStore(join(temp.dir, 'data'));
      catalog = new ImageCatalog(join(temp.dir, 'data'));
      jobs = new ImagingJobs(store.db);
      routes = new ImagingRoutes({ catalog, jobs, logger: new MemoryLogger(), machineName: () => undefined, zeroCopy });
      server = createServer((req, res) => {
        void routes.handle(req, res, new URL(req.url ?? '/', 'http://x')).then((handled) => {
          if (!handled) res.writeHead(404).end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      job = jobs.create({ kind: 'capture', image: 'chunks', macs: [PC] }).id;
    });

    after(async () => {
      await new Promise((resolve) => server.close(resolve));
      await routes.close();
      store.close();
      temp.remove();
    });

    const upload = (name: string, data: Buffer) => call(`${url}/imaging/chunks/${name}?job=${job}&mac=${PC}`, 'PUT', data);

    test('uploads one after another are each stored as sent; a repeat is "already stored"', async () => {
      // Different sizes, the larger first: a reused receive buffer must never leak one chunk's tail into the next.
      const chunks = [randomBytes(3 * 1024 * 1024 + 17), randomBytes(100_000), Buffer.alloc(0), randomBytes(MAX_CHUNK_BYTES)];
      for (const data of chunks) assert.equal((await upload(sha(data), data)).status, 201);
      for (const data of chunks) assert.deepEqual(readFileSync(catalog.chunks.path(sha(data))), data);
      assert.equal((await upload(sha(chunks[1]), chunks[1])).status, 200);
    });

    test('a damaged or oversized upload is refused and stores nothing', async () => {
      const data = randomBytes(200_000);
      const damaged = await upload(sha(randomBytes(10)), data);
      assert.equal(damaged.status, 422);
      assert.match(damaged.body.toString(), /damaged in transit, send it again/);
      const big = randomBytes(MAX_CHUNK_BYTES + 1);
      assert.equal((await upload(sha(big), big)).status, 413);
      assert.equal(catalog.chunks.has(sha(big)), false);
    });

    test('GET gives the stored chunk whole, many times over one server; HEAD gives its length', async () => {
      const data = randomBytes(2 * 1024 * 1024 + 5);
      await upload(sha(data), data);
      for (let i = 0; i < 3; i++) {
        const got = await call(`${url}/imaging/chunks/${sha(data)}`, 'GET');
        assert.equal(got.status, 200);
        assert.equal(got.headers['content-length'], String(data.length));
        assert.equal(sha(got.body), sha(data));
      }
      const head = await call(`${url}/imaging/chunks/${sha(data)}`, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(data.length));
      assert.equal(head.body.length, 0);
      // sendfile(2) and koffi exist on Linux only; elsewhere every body is streamed.
      if (zeroCopy && process.platform === 'linux') assert.ok(routes.zeroCopyBodies >= 3, 'the bodies went out by sendfile');
      else assert.equal(routes.zeroCopyBodies, 0);
    });

    test('several chunks at once each arrive whole', async () => {
      const chunks = Array.from({ length: 6 }, (_, i) => randomBytes(512 * 1024 * (i + 1)));
      for (const data of chunks) await upload(sha(data), data);
      const got = await Promise.all(chunks.map((data) => call(`${url}/imaging/chunks/${sha(data)}`, 'GET')));
      got.forEach((answer, i) => assert.equal(sha(answer.body), sha(chunks[i])));
    });

    test('a chunk that is not stored is a 404; a malformed name is no chunk request', async () => {
      assert.equal((await call(`${url}/imaging/chunks/${'0'.repeat(64)}`, 'GET')).status, 404);
      assert.equal((await call(`${url}/imaging/chunks/../../etc/passwd`, 'GET')).status, 404);
      assert.equal((await call(`${url}/imaging/chunks/${'A'.repeat(64)}`, 'GET')).status, 404);
    });
  });
}
