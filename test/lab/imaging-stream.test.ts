// Lab: one multicast stream for the whole room, with real firmware. `bootbench serve` in
// full-DHCP mode on the lab bridge; QEMU PCs (BIOS and UEFI) network-boot the imaging
// environment, and agents on loop devices in their own namespaces (veths on the same bridge)
// stand for more PCs; all of them deploy one image in one job, from one stream.
//   - every disk is checked: the host's result per PC, the partition table and the files'
//     SHA-256 on each disk file;
//   - the host's egress (br0's transmit counter: the host's own traffic, not the bridge's
//     flooding) stays at most 1.3x the image's compressed size, where unicast would be Nx;
//   - each PC's row says it got most of the image from the stream.
//
//   server ns: br0 192.0.2.1 (bootbench serve) --- tap0..: QEMU PCs (DHCP 192.0.2.100-150)
//                                              \-- ag0..: agents' namespaces 192.0.2.2x
//
// The room starts together. QEMU under TCG reaches the imaging environment tens of seconds
// apart from one PC to the next, where a bench of real PCs switched on at once would be
// seconds apart; so the test holds the room at one point: the stream's feedback port is
// closed (nftables, counting who knocks), each QEMU PC is paused (monitor `stop`, which also
// stops its clock) as soon as its receiver knocks, and once every PC's receiver has knocked
// the port opens and the PCs go on. The stream then starts because every PC is heard, under
// any start rule, and no receiver has waited long enough to give up on it.
//
// BOOTBENCH_LAB_IMAGING_ENV=DIR boots another build of the imaging environment (e.g. one made
// with `node scripts/build-imaging-env.mjs --out DIR`) instead of resources/imaging.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ImageCatalog } from '../../main/imaging/index.js';
import { missingPrograms, waitFor } from '../helpers/netns.js';
import {
  BRIDGE,
  BootLab,
  PROJECT_ROOT,
  QemuClient,
  SERVER_ADDRESS,
  bootbenchCommand,
  labUnavailableReason,
  type ClientKind,
  type ClientResult,
} from './boot-lab.js';
import { FULL_DHCP_POOL } from './scenario.js';
import { MIB, extract, partitions, putAt, run, sha256, useImagingGuestMemory, virtioDisk } from './imaging-disks.js';
import { busyboxBin, streamReceiverBin } from '../helpers/stream-image.js';

const execFileAsync = promisify(execFile);
const QEMU_KINDS: ClientKind[] = ['bios', 'uefi', 'bios', 'uefi'];
const LOOP_AGENTS = 4;
const ROOM = QEMU_KINDS.length + LOOP_AGENTS;
const NAME = `imaging stream with real firmware: ${QEMU_KINDS.length} QEMU PCs (BIOS and UEFI) and ${LOOP_AGENTS} agents deploy one image from one stream`;

const ENV_DIR = resolve(process.env.BOOTBENCH_LAB_IMAGING_ENV ?? join(PROJECT_ROOT, 'resources', 'imaging'));
const AGENT = join(PROJECT_ROOT, 'build', 'imaging-env', 'agent.sh');
const HTTP_PORT = 8080;
/** The stream's cap, bits per second: what a QEMU PC under TCG takes in without losing much while it writes. */
const MAX_RATE = process.env.BOOTBENCH_LAB_STREAM_RATE ?? '24M';
const TIMEOUT_MS = Number(process.env.BOOTBENCH_LAB_IMAGING_TIMEOUT_MS ?? 300_000);
const DISK_MIB = 80;

function environmentWithReceiver(): string | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(ENV_DIR, 'manifest.json'), 'utf8')) as { inputs?: { scripts?: Record<string, string> } };
    if (manifest.inputs?.scripts?.['bb-stream-recv.c'] && existsSync(join(ENV_DIR, 'initrd.img'))) return undefined;
    return `the imaging environment in ${ENV_DIR} was built without the stream receiver: run \`npm run build:imaging\``;
  } catch {
    return `the imaging environment is not built in ${ENV_DIR}: run \`npm run build:imaging\``;
  }
}

const skip =
  (process.getuid?.() !== 0 ? 'loop devices and namespaces need root' : undefined) ??
  labUnavailableReason({ kinds: ['bios', 'uefi'] }) ??
  environmentWithReceiver() ??
  missingPrograms('busybox', 'losetup', 'sfdisk', 'partclone.extfs', 'partclone.restore', 'zstd', 'curl', 'gcc', 'nft', 'mkfs.ext4', 'debugfs');
useImagingGuestMemory();

/** The reference disk: GPT, one ext4 partition of random (incompressible) and repetitive files. Name -> SHA-256 of each file. */
function roomReference(dir: string): { disk: string; files: Map<string, string> } {
  const disk = join(dir, 'room-reference.img');
  run('truncate', ['-s', `${DISK_MIB}M`, disk]);
  run('sfdisk', ['-q', disk], 'label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69C47D8E4D\n');
  const [root] = partitions(disk);
  const stage = join(dir, 'room-stage');
  mkdirSync(join(stage, 'etc'), { recursive: true });
  writeFileSync(join(stage, 'etc', 'hostname'), 'room-reference\n');
  const files = new Map<string, string>();
  for (let i = 0; i < 6; i++) {
    const data = randomBytes(4 * MIB);
    writeFileSync(join(stage, `media-${i}.bin`), data);
    files.set(`media-${i}.bin`, sha256(data));
  }
  for (let i = 0; i < 4; i++) {
    const data = Buffer.alloc(4 * MIB);
    for (let at = 0; at < data.length; at += 64) data.write(`room file ${i} line ${at >> 6} `.padEnd(63, '.') + '\n', at);
    writeFileSync(join(stage, `text-${i}.txt`), data);
    files.set(`text-${i}.txt`, sha256(data));
  }
  const rootFile = join(dir, 'room-root.img');
  run('mkfs.ext4', ['-q', '-F', '-d', stage, rootFile, `${root.sectors / 2}k`]);
  putAt(disk, root, rootFile);
  return { disk, files };
}

/** One command to a QEMU monitor (HMP on a unix socket), answered when the prompt is back. */
function monitor(socket: string, command: string): Promise<void> {
  return new Promise((resolveDone, reject) => {
    const conn = createConnection(socket);
    let seen = '';
    let sent = false;
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`QEMU monitor ${socket}: no answer to ${command}`));
    }, 10_000);
    conn.on('data', (d) => {
      seen += d.toString('latin1');
      if (!seen.includes('(qemu)')) return;
      seen = '';
      if (!sent) {
        sent = true;
        conn.write(`${command}\n`);
      } else {
        clearTimeout(timer);
        conn.end();
        resolveDone();
      }
    });
    conn.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

interface AgentRun {
  mac: string;
  code: number | null;
  out: string;
  seconds: number;
}

if (skip) test(NAME, { skip }, () => {});
else
  describe(NAME, () => {
    const bootLab = new BootLab('is');
    const { lab } = bootLab;
    const dataDir = join(bootLab.dir, 'data');
    const bin = join(bootLab.dir, 'bin');
    const busybox = join(bootLab.dir, 'busybox-bin');
    const events: Record<string, any>[] = [];
    const agentNs: string[] = [];
    const loops: string[] = [];
    let reference: { disk: string; files: Map<string, string> };

    function cli(...args: string[]): string {
      const { cmd, args: base } = bootbenchCommand();
      return execFileSync(cmd, [...base, ...args, '--data', dataDir], { cwd: PROJECT_ROOT }).toString();
    }
    function jobs(): {
      id: number;
      kind: string;
      machines: { mac: string; result?: string; reason?: string; phase: string; streamed?: number; repaired?: number }[];
    }[] {
      try {
        return JSON.parse(cli('image', 'status', '--json'));
      } catch (err) {
        return JSON.parse(String((err as { stdout?: Buffer }).stdout ?? '[]'));
      }
    }
    function attach(file: string, readOnly = false): string {
      const dev = run('losetup', ['-f', '--show', ...(readOnly ? ['-r'] : []), file]).trim();
      loops.push(dev);
      return dev;
    }
    /** The agent as PC `mac` in namespace `ns`, allowed to touch only `disk` (a loop device this test made). */
    function agent(ns: string, mac: string, disk: string): Promise<AgentRun> {
      const env = [`PATH=${busybox}:${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, `BOOTBENCH_AGENT_DISKS=${disk}`, `BOOTBENCH_AGENT_TMP=${bootLab.dir}`];
      const started = Date.now();
      const child = lab.spawn(ns, '/usr/bin/env', ['-i', ...env, '/bin/busybox', 'sh', AGENT, 'run', `http://${SERVER_ADDRESS}:${HTTP_PORT}`, mac], {
        detached: true,
      });
      let out = '';
      const take = (d: Buffer) => (out += d.toString().replace(/^(?=.)/gm, () => `[${((Date.now() - started) / 1000).toFixed(1)} s] `));
      child.stdout?.on('data', take);
      child.stderr?.on('data', take);
      return new Promise((resolveRun) => child.on('exit', (code) => resolveRun({ mac, code, out, seconds: (Date.now() - started) / 1000 })));
    }
    const txBytes = () => Number(lab.exec(bootLab.serverNs, 'cat', [`/sys/class/net/${BRIDGE}/statistics/tx_bytes`]).trim());
    /** Addresses whose stream feedback knocked on the closed port. */
    function knocked(): string[] {
      const out = JSON.parse(lab.exec(bootLab.serverNs, 'nft', ['-j', 'list', 'set', 'inet', 'bbgate', 'heard'])) as {
        nftables: { set?: { elem?: string[] } }[];
      };
      return out.nftables.flatMap((x) => x.set?.elem ?? []);
    }
    /** IPv4 address -> MAC, from the server's neighbour table (a PC's firmware and its imaging environment may hold different leases). */
    function neighbours(): Map<string, string> {
      const out = JSON.parse(lab.exec(bootLab.serverNs, 'ip', ['-j', 'neigh', 'show', 'dev', BRIDGE])) as { dst: string; lladdr?: string }[];
      return new Map(out.filter((n) => n.lladdr).map((n) => [n.dst, n.lladdr!.toLowerCase()]));
    }
    function logLines(): string {
      return events
        .filter((e) => e.type === 'log' || e.type === 'imaging.progress')
        .slice(-40)
        .map((e) => JSON.stringify(e))
        .join('\n');
    }

    before(async () => {
      mkdirSync(dataDir, { recursive: true });
      if (process.env.BOOTBENCH_LAB_IMAGING_ENV) symlinkSync(ENV_DIR, join(dataDir, 'imaging-env'));
      busyboxBin(busybox);
      streamReceiverBin(bin);
      reference = roomReference(bootLab.dir);

      // The agents' namespaces, each a PC on the lab's bridge, with addresses outside the pool.
      for (let i = 0; i < LOOP_AGENTS; i++) {
        const ns = lab.namespace(`a${i}`);
        lab.veth(ns, 'eth0', `192.0.2.${20 + i}/24`, bootLab.serverNs, `ag${i}`, null);
        lab.exec(bootLab.serverNs, 'ip', ['link', 'set', `ag${i}`, 'master', BRIDGE]);
        agentNs.push(ns);
      }
      // Snooping off: this test is about the room; the snooping tests cover switches that filter.
      lab.exec(bootLab.serverNs, 'ip', ['link', 'set', BRIDGE, 'type', 'bridge', 'mcast_snooping', '0']);
      bootLab.startRouterAdvertiser();

      // The room is held for a while (see the top): the host must not fail the paused PCs as silent.
      const { cmd, args } = bootbenchCommand();
      args.push('serve', '--interface', BRIDGE, '--mode', 'dhcp', '--root', bootLab.makeRoot({}), '--log', 'json', '--data', dataDir);
      args.push('--pool', `${FULL_DHCP_POOL.first}-${FULL_DHCP_POOL.last}`, '--http-port', String(HTTP_PORT), '--max-rate', MAX_RATE);
      process.env.BOOTBENCH_IMAGING_SILENCE_SECONDS = '900';
      let ready = false;
      const server = bootLab.spawn('bootbench', bootLab.serverNs, cmd, args, {
        cwd: PROJECT_ROOT,
        onLine: (line) => {
          if (!line.startsWith('{')) return;
          try {
            const event = JSON.parse(line) as Record<string, any>;
            events.push(event);
            if (event.type === 'log' && /serving on/.test(String(event.message))) ready = true;
          } catch {
            /* not an event */
          }
        },
      });
      await waitFor(() => ready || server.exitCode !== null, 30_000, `bootbench serve to start\n${bootLab.processReport()}`);
      assert.ok(ready, `bootbench serve exited\n${bootLab.processReport()}`);

      // The image: captured from the reference disk by an agent, as from a PC.
      const sourceMac = '52:54:00:bc:01:00';
      cli('image', 'capture', '--machine', sourceMac, '--name', 'room', '--then', 'poweroff');
      const captured = await agent(agentNs[0], sourceMac, attach(reference.disk, true));
      assert.equal(captured.code, 0, `the capture failed:\n${captured.out}\n${logLines()}`);
    });

    after(async () => {
      await lab.destroy();
      // Partition loops an agent made over a disk's loop go before the disk's own.
      for (const dev of loops.reverse()) {
        const over = run('losetup', ['-n', '-O', 'NAME', '-j', dev])
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean);
        for (const d of [...over, dev])
          try {
            run('losetup', ['-d', d]);
          } catch {
            /* gone */
          }
      }
      await bootLab.destroy();
    });

    test(`${ROOM} PCs deploy one image together: every disk verified, the host sends it about once, each PC got it from the stream`, async (t) => {
      const catalog = new ImageCatalog(dataDir);
      const manifest = catalog.get('room');
      assert.ok(manifest, 'the captured image is in the catalog');
      // What the stream sends: every chunk in manifest order, compressed.
      const compressed = manifest.partitions.flatMap((p) => p.chunks).reduce((n, sha) => n + statSync(catalog.chunks.path(sha)).size, 0);

      const pcs = QEMU_KINDS.map((kind, i) => {
        const disk = join(bootLab.dir, `target-${kind}-${i}.img`);
        run('truncate', ['-s', `${DISK_MIB}M`, disk]);
        const socket = join(bootLab.dir, `monitor-${i}.sock`);
        const client = new QemuClient(bootLab, kind, i, [...virtioDisk(`d${i}`, disk, `BB-ROOM-${i}`), '-monitor', `unix:${socket},server=on,wait=off`]);
        return { kind, client, disk, socket, mac: client.mac };
      });
      const loopPcs = agentNs.map((ns, i) => {
        const file = join(bootLab.dir, `target-agent-${i}.img`);
        run('truncate', ['-s', `${DISK_MIB}M`, file]);
        return { ns, file, dev: attach(file), mac: `52:54:00:bc:00:0${i}` };
      });
      const macs = [...pcs.map((p) => p.mac), ...loopPcs.map((p) => p.mac)];
      cli('image', 'deploy', 'room', ...macs.flatMap((m) => ['--machine', m]), '--then', 'poweroff');

      const started = Date.now();
      const qemuRuns = pcs.map((p) => p.client.run(TIMEOUT_MS));
      // Four TCG guests and four agents share this machine's cores, so a guest can go unscheduled
      // for longer than its tap's default queue (1000 frames) lasts at the stream's rate; a real
      // PC has its own CPU. A longer queue stands in for the NIC ring and switch buffer it has.
      const taps = pcs.map((_, i) => `tap${i}`);
      for (const tap of taps) lab.exec(bootLab.serverNs, 'ip', ['link', 'set', tap, 'txqueuelen', '20000']);
      const tapDrops = () => taps.map((tap) => Number(lab.exec(bootLab.serverNs, 'cat', [`/sys/class/net/${tap}/statistics/tx_dropped`]).trim())).join(', ');
      const report = (results: ClientResult[]) =>
        `${results.map((r) => `${r.kind} ${r.mac}: exit ${r.exitCode ?? r.signal}\n${r.serial.split('\n').slice(-12).join('\n')}`).join('\n---\n')}\n` +
        `--- jobs ---\n${JSON.stringify(jobs(), null, 1)}\n--- host ---\n${logLines()}\n${bootLab.processReport(10)}`;
      /** On a failure while PCs are held: power them off, then report. */
      const stopAndReport = async () => {
        for (const p of pcs) p.client.stop();
        return report(await Promise.all(qemuRuns));
      };

      // The stream's port is known once the first PC asked for its task: close it, counting who knocks.
      const streamLine = await waitFor(
        () => events.find((e) => e.type === 'log' && /^imaging: stream 239\.\d+\.\d+\.\d+:\d+:/.test(String(e.message))),
        TIMEOUT_MS,
        'the deploy stream to be set up (a PC asking for its task)',
      );
      const port = /:(\d+):/.exec(String(streamLine.message))![1];
      const nft = (...args: string[]) => lab.exec(bootLab.serverNs, 'nft', args);
      nft('add', 'table', 'inet', 'bbgate');
      nft('add', 'set', 'inet', 'bbgate', 'heard', '{ type ipv4_addr; flags dynamic; }');
      nft('add', 'chain', 'inet', 'bbgate', 'in', '{ type filter hook input priority 0; }');
      nft('add', 'rule', 'inet', 'bbgate', 'in', 'udp', 'dport', port, 'add', '@heard', '{ ip saddr }', 'drop');

      // Each QEMU PC is paused as soon as its receiver knocks.
      const paused = new Set<string>();
      const exited = new Set<number>();
      qemuRuns.forEach((r, i) => void r.then(() => exited.add(i)));
      await waitFor(
        async () => {
          if (exited.size) throw new Error('a QEMU PC stopped before it reached the stream');
          // Two commands per look: a few looks a second keep the reaction well inside the receiver's patience.
          await new Promise((r) => setTimeout(r, 150));
          const macOf = neighbours();
          const heard = new Set(knocked().map((address) => macOf.get(address)));
          for (const p of pcs) {
            if (heard.has(p.mac) && !paused.has(p.mac)) {
              await monitor(p.socket, 'stop');
              paused.add(p.mac);
              t.diagnostic(`${p.kind} ${p.mac} reached the stream after ${((Date.now() - started) / 1000).toFixed(0)} s: held`);
            }
          }
          return paused.size === pcs.length;
        },
        TIMEOUT_MS,
        'every QEMU PC to reach the stream',
      ).catch(async (error: Error) => assert.fail(`${error.message}\n${await stopAndReport()}`));

      // The agents start now; once every receiver knocked, the port opens and the QEMU PCs go on.
      // Each agent's namespace reaches the host first (a first connection was once seen to take
      // seconds), so no agent's receiver starts waiting for the stream long before the others.
      const reach = Date.now();
      await Promise.all(
        loopPcs.map((p) =>
          execFileAsync('ip', ['netns', 'exec', p.ns, 'curl', '-s', '-o', '/dev/null', '--max-time', '30', `http://${SERVER_ADDRESS}:${HTTP_PORT}/`]),
        ),
      );
      t.diagnostic(`the agents' namespaces reached the host in ${((Date.now() - reach) / 1000).toFixed(1)} s`);
      const egressBefore = txBytes();
      const heldAt = Date.now();
      const agentRuns = loopPcs.map((p) => agent(p.ns, p.mac, p.dev));
      await waitFor(() => knocked().length >= ROOM, 60_000, `all ${ROOM} receivers to knock`).catch(async (error: Error) =>
        assert.fail(`${error.message} (${knocked().join(', ')})\n${await stopAndReport()}`),
      );
      nft('delete', 'table', 'inet', 'bbgate');
      await Promise.all(pcs.map((p) => monitor(p.socket, 'cont')));
      const opened = Date.now();
      t.diagnostic(`the agents' receivers knocked ${((opened - heldAt) / 1000).toFixed(1)} s after they started; the stream opens`);

      const [results, agents] = await Promise.all([Promise.all(qemuRuns), Promise.all(agentRuns)]);
      const egress = txBytes() - egressBefore;
      const seconds = (Date.now() - opened) / 1000;
      const deploy = jobs().find((j) => j.kind === 'deploy')!;
      const ended = events.find((e) => e.type === 'log' && /stream of job \d+ ended/.test(String(e.message)));
      t.diagnostic(
        `${ROOM} PCs in ${seconds.toFixed(0)} s after the stream opened; image ${(compressed / MIB).toFixed(1)} MiB compressed; host egress ` +
          `${(egress / MIB).toFixed(1)} MiB = ${(egress / compressed).toFixed(2)}x (unicast would be ~${ROOM}x); ${ended?.message ?? 'no stream end logged'}`,
      );
      t.diagnostic(`frames the QEMU PCs' taps dropped: ${tapDrops()}`);
      for (const r of results)
        t.diagnostic(
          `${r.kind} ${r.mac}: ${r.serial
            .split('\n')
            .filter((l) => /bb-stream-recv|bootbench-agent/.test(l))
            .join(' | ')}`,
        );
      for (const a of agents) t.diagnostic(`agent ${a.mac}: ${a.seconds.toFixed(1)} s | ${a.out.trim().split('\n').join(' | ')}`);
      for (const m of deploy.machines)
        t.diagnostic(`${m.mac}: ${m.result}, ${((m.streamed ?? 0) / MIB).toFixed(1)} MiB streamed, ${((m.repaired ?? 0) / MIB).toFixed(1)} MiB repaired`);

      // The host's result per PC, and the PCs' own word.
      for (const m of deploy.machines) assert.equal(m.result, 'done', `${m.mac}: ${m.phase} ${m.reason ?? ''}\n${report(results)}`);
      for (const r of results) assert.equal(r.exitCode, 0, `${r.kind} ${r.mac} should power off after its deploy\n${report(results)}`);
      for (const a of agents) {
        assert.equal(a.code, 0, `agent ${a.mac} failed:\n${a.out}`);
        assert.match(a.out, /deployed image room to loop\d+, verified/);
      }

      // Every disk: the reference's partition table and its files.
      run('sync', []);
      const expected = partitions(reference.disk);
      for (const [i, disk] of [...pcs.map((p) => p.disk), ...loopPcs.map((p) => p.file)].entries()) {
        assert.deepEqual(partitions(disk), expected, `${macs[i]}: partition table`);
        const root = extract(disk, partitions(disk)[0], join(bootLab.dir, `check-${i}.img`));
        for (const [name, hash] of reference.files) {
          const data = execFileSync('debugfs', ['-R', `cat /${name}`, root], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 * MIB });
          assert.equal(sha256(data), hash, `${macs[i]}: ${name}`);
        }
      }

      // Each PC's row: most of the image came from the stream.
      for (const m of deploy.machines) {
        const streamed = m.streamed ?? 0;
        assert.ok(
          streamed > compressed / 2 && streamed > (m.repaired ?? 0),
          `${m.mac} got most of the image from the stream: ${JSON.stringify(m)}\n${logLines()}`,
        );
      }
      assert.ok(
        egress <= 1.3 * compressed,
        `the host sent ${(egress / compressed).toFixed(2)}x the compressed image for ${ROOM} PCs (at most 1.3x)\n${logLines()}`,
      );
    });
  });
