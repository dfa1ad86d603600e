// What the host and the agent (a busybox shell script) say to each other over HTTP: plain
// `key=value` lines, which the agent reads with `read` and no parser, and the host parses
// strictly (an unknown or malformed line is an error, never guessed at).
//
//   task      job=12  kind=deploy|capture|none  image=NAME  disk=SELECTOR  then=disk|poweroff  hostname=NAME
//             stream=GROUP:PORT:SESSION   (a deploy to several PCs: the image's multicast stream)
//   manifest  label=gpt|dos  required=BYTES  disk=NAME size=BYTES model=M serial=S
//             part=N start=SECTOR sectors=COUNT fs=TYPE tool=TOOL bytes=N sha256=HEX
//             chunk=N SHA256 [BYTES] ... (in stream order; BYTES, from the host: the chunk's share of
//                                      the partition's stream, what the agent counts once it wrote the chunk)
//             table=LINE ...          (`sfdisk --dump`, one line each)
//   report    phase=PHASE  bytes=N  total=N  part=N  reason=TEXT
import { CHUNK_NAME } from './chunk-store.js';
import { ImageError, requiredDiskBytes, type ImageManifest, type ImagePartition } from './image-catalog.js';
import { PHASES, type ImageJob, type MachinePhase, type MachineReport } from './jobs.js';

const TOOLS = new Set(['extfs', 'ntfs', 'fat', 'xfs', 'btrfs', 'dd', 'boot']);
/** Values the agent passes to a shell: no quoting, spaces or control characters needed. */
const PLAIN = /^[A-Za-z0-9._:/+@-]*$/;

function plain(value: string): string {
  return PLAIN.test(value) ? value : value.replace(/[^A-Za-z0-9._:/+@-]/g, '_');
}

export function renderTask(job: ImageJob | undefined, hostname?: string, stream?: string): string {
  if (!job) return 'kind=none\n';
  return [
    `job=${job.id}`,
    `kind=${job.kind}`,
    `image=${job.image}`,
    `disk=${plain(job.disk ?? '')}`,
    `then=${job.then}`,
    `hostname=${plain(hostname ?? '')}`,
    // An agent without the stream receiver ignores the line and fetches every chunk by HTTP.
    ...(stream ? [`stream=${plain(stream)}`] : []),
    '',
  ].join('\n');
}

/** A capture cuts each partition's stream into chunks of this size; only the last is shorter. */
export const CAPTURE_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * The stream bytes each chunk of a partition holds, adding up to the partition's stream: the
 * agent counts these as written, not a chunk's nominal 4 MiB (the boot area's one chunk is
 * 440 bytes on a GPT disk, and a partition's last chunk is short). A partition whose length
 * the capture's cut does not explain gets its bytes spread evenly, still adding up.
 */
export function chunkStreamBytes(p: Pick<ImagePartition, 'streamBytes' | 'chunks'>): number[] {
  const n = p.chunks.length;
  if (n === 0) return [];
  const last = p.streamBytes - (n - 1) * CAPTURE_CHUNK_BYTES;
  if (last > 0 && last <= CAPTURE_CHUNK_BYTES) return p.chunks.map((_, i) => (i === n - 1 ? last : CAPTURE_CHUNK_BYTES));
  const each = Math.floor(p.streamBytes / n);
  return p.chunks.map((_, i) => (i === n - 1 ? p.streamBytes - each * (n - 1) : each));
}

export function renderManifest(manifest: ImageManifest): string {
  const lines = [`label=${manifest.label}`, `required=${requiredDiskBytes(manifest)}`];
  for (const p of manifest.partitions) {
    lines.push(`part=${p.number} start=${p.start} sectors=${p.sectors} fs=${p.fs || '-'} tool=${p.tool} bytes=${p.streamBytes} sha256=${p.streamSha256}`);
  }
  for (const p of manifest.partitions) {
    const sizes = chunkStreamBytes(p);
    p.chunks.forEach((sha, i) => lines.push(`chunk=${p.number} ${sha} ${sizes[i]}`));
  }
  for (const line of manifest.table.split('\n')) if (line.trim()) lines.push(`table=${line}`);
  return `${lines.join('\n')}\n`;
}

function fields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.trim().split(/\s+/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ImageError(`malformed field "${part}"`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

function count(value: string | undefined, what: string): number {
  if (value === undefined || !/^\d+$/.test(value)) throw new ImageError(`${what} must be a whole number, got "${value ?? ''}"`);
  return Number(value);
}

/** Parses the manifest a capturing agent sends. */
export function parseCapturedManifest(text: string, meta: { name: string; mac: string; machine?: string; now: number }): ImageManifest {
  let label: 'gpt' | 'dos' | undefined;
  let disk: Record<string, string> | undefined;
  const partitions = new Map<number, ImagePartition>();
  const table: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) continue;
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq) : '';
    const value = line.slice(eq + 1);
    switch (key) {
      case 'label':
        if (value !== 'gpt' && value !== 'dos') throw new ImageError(`partition table "${value}" is not supported: GPT and MBR (dos) are`);
        label = value;
        break;
      case 'required':
        break; // the host computes it from the partitions
      case 'disk':
        disk = fields(`disk=${value}`);
        break;
      case 'part': {
        const f = fields(`part=${value}`);
        const number = count(f.part, 'partition number');
        if (!TOOLS.has(f.tool)) throw new ImageError(`partition ${number}: unknown reader "${f.tool}"`);
        if (!/^[0-9a-f]{64}$/.test(f.sha256 ?? '')) throw new ImageError(`partition ${number}: no stream SHA-256`);
        partitions.set(number, {
          number,
          start: count(f.start, 'start'),
          sectors: count(f.sectors, 'sectors'),
          fs: f.fs === '-' ? '' : (f.fs ?? ''),
          tool: f.tool,
          streamBytes: count(f.bytes, 'bytes'),
          streamSha256: f.sha256,
          chunks: [],
        });
        break;
      }
      case 'chunk': {
        const [n, sha, share, ...rest] = value.split(' ');
        if (share !== undefined) count(share, "a chunk's bytes");
        if (rest.length) throw new ImageError(`unexpected manifest line "${line.slice(0, 60)}"`);
        const p = partitions.get(count(n, 'chunk partition'));
        if (!p) throw new ImageError(`chunk for partition ${n}, which was not described before it`);
        if (!CHUNK_NAME.test(sha ?? '')) throw new ImageError(`chunk name "${sha}" is not a SHA-256`);
        p.chunks.push(sha);
        break;
      }
      case 'table':
        table.push(value);
        break;
      default:
        throw new ImageError(`unexpected manifest line "${line.slice(0, 60)}"`);
    }
  }
  if (!label) throw new ImageError('the manifest names no partition table (label=)');
  if (!disk?.size) throw new ImageError('the manifest does not describe the source disk (disk= size=)');
  if (partitions.size === 0) throw new ImageError('the source disk has no partitions to capture');
  for (const p of partitions.values()) {
    if (p.streamBytes === 0) throw new ImageError(`partition ${p.number} was read as empty: its reader (${p.tool}) gave no data`);
    if (p.chunks.length === 0) throw new ImageError(`partition ${p.number} has data but no chunks`);
  }
  return {
    format: 1,
    name: meta.name,
    createdAt: meta.now,
    source: { mac: meta.mac, machine: meta.machine, disk: disk.disk, model: disk.model, serial: disk.serial },
    diskBytes: count(disk.size, 'disk size'),
    table: `${table.join('\n')}\n`,
    label,
    partitions: [...partitions.values()].sort((a, b) => a.number - b.number),
  };
}

export function parseReport(text: string): MachineReport {
  const out: Partial<MachineReport> = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).trim();
    if (key === 'phase') {
      if (!PHASES.includes(value as MachinePhase)) throw new ImageError(`unknown phase "${value}"`);
      out.phase = value as MachinePhase;
    } else if (key === 'bytes') out.bytes = count(value, 'bytes');
    else if (key === 'total') out.total = count(value, 'total');
    else if (key === 'part') out.part = count(value, 'part');
    else if (key === 'reason') out.reason = value.slice(0, 2000);
    else throw new ImageError(`unexpected report line "${line.slice(0, 60)}"`);
  }
  if (!out.phase) throw new ImageError('a report needs phase=');
  return out as MachineReport;
}
