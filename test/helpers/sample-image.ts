// An image in a data folder as a finished capture leaves it: chunks stored through the chunk
// store (which checks each against its SHA-256 name) and the manifest added last by the
// catalog. The chunk bytes are deterministic filler, not a real partclone stream: enough for
// the catalog, the API and the screens, which never decompress them.
import { createHash } from 'node:crypto';
import { ImageCatalog, type ImageManifest } from '../../main/imaging/index.js';

export interface SampleImageOptions {
  name: string;
  mac?: string;
  machine?: string;
  /** Chunks per partition (each 64 KiB of filler); two partitions. */
  chunksPerPartition?: number;
  /** Filler seed: images with the same seed share their chunks. */
  seed?: string;
  diskBytes?: number;
  createdAt?: number;
}

export async function addSampleImage(dataDir: string, options: SampleImageOptions): Promise<ImageManifest> {
  const catalog = new ImageCatalog(dataDir);
  const per = options.chunksPerPartition ?? 2;
  const seed = options.seed ?? options.name;
  const partitions = [];
  for (const [index, fs, tool] of [
    [1, 'vfat', 'fat'],
    [2, 'ext4', 'extfs'],
  ] as const) {
    const chunks: string[] = [];
    const stream = createHash('sha256');
    for (let c = 0; c < per; c++) {
      const bytes = Buffer.alloc(64 * 1024, `${seed}/${index}/${c}`);
      const sha = createHash('sha256').update(bytes).digest('hex');
      await catalog.chunks.put(sha, [bytes]);
      stream.update(bytes);
      chunks.push(sha);
    }
    partitions.push({
      number: index,
      start: index * 2048,
      sectors: 2048 * 64,
      fs,
      tool,
      streamBytes: per * 3 * 1024 * 1024,
      streamSha256: stream.digest('hex'),
      chunks,
    });
  }
  const manifest: ImageManifest = {
    format: 1,
    name: options.name,
    createdAt: options.createdAt ?? Date.now(),
    source: { mac: options.mac ?? '52:54:00:aa:00:01', machine: options.machine, disk: 'vda', model: 'QEMU HARDDISK', serial: 'REF-0001' },
    diskBytes: options.diskBytes ?? 256 * 1024 * 1024,
    table: 'label: gpt\n',
    label: 'gpt',
    partitions,
  };
  catalog.add(manifest);
  return manifest;
}
