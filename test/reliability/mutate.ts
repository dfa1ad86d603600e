// Mutation fuzzing helpers: a seeded random source (so a failure is reproducible from its
// seed and index) and byte-level mutations of real captured packets, in the manner of
// AFL's havoc stage: bit flips, interesting values, length-field damage, truncation,
// extension, splices. Seeds are real client packets, so most mutants still look like
// DHCP/TFTP and reach deep into the decoders instead of failing on the first byte.

export type Random = () => number;

/** mulberry32: small, fast, good enough to drive mutations; same seed, same sequence. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x35, 0x3c, 0x2b, 0x34, 0x7f, 0x80, 0xfe, 0xff];

function int(random: Random, n: number): number {
  return Math.floor(random() * n);
}

/** One to eight stacked mutations of `seed` (never modified in place). */
export function mutate(seed: Uint8Array, random: Random, maxLength = 1500): Buffer {
  let out = Buffer.from(seed);
  const rounds = 1 + int(random, 8);
  for (let r = 0; r < rounds; r++) {
    const len = out.length;
    switch (int(random, 11)) {
      case 0: // flip one bit
        if (len) out[int(random, len)] ^= 1 << int(random, 8);
        break;
      case 1: // set a byte to a value that is a boundary or a meaningful option code
        if (len) out[int(random, len)] = INTERESTING[int(random, INTERESTING.length)];
        break;
      case 2: // random byte
        if (len) out[int(random, len)] = int(random, 256);
        break;
      case 3: // 16-bit boundary value (opcodes, block numbers, lengths)
        if (len >= 2) out.writeUInt16BE([0, 1, 0x7fff, 0x8000, 0xffff, 0x0100][int(random, 6)], int(random, len - 1));
        break;
      case 4: // truncate
        out = out.subarray(0, int(random, len + 1));
        break;
      case 5: // extend with random bytes
        out = Buffer.concat([out, Buffer.from(Array.from({ length: 1 + int(random, 64) }, () => int(random, 256)))]);
        break;
      case 6: {
        // delete a range
        if (!len) break;
        const at = int(random, len);
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + int(random, Math.min(32, len - at)))]);
        break;
      }
      case 7: {
        // duplicate a range (repeated options, repeated strings)
        if (!len) break;
        const at = int(random, len);
        const piece = out.subarray(at, at + 1 + int(random, 32));
        const to = int(random, len + 1);
        out = Buffer.concat([out.subarray(0, to), piece, out.subarray(to)]);
        break;
      }
      case 8: // remove every NUL terminator in a stretch (unterminated strings)
        for (let i = int(random, len + 1); i < len && i < 600; i++) if (out[i] === 0) out[i] = 0x41;
        break;
      case 9: {
        // a huge or zero length byte right after a plausible option code
        if (len < 2) break;
        const at = int(random, len - 1);
        out[at + 1] = [0, 1, 0xff, 0xfe][int(random, 4)];
        break;
      }
      case 10: // fill a stretch with 0xff (end options, all-ones)
        out.fill(0xff, int(random, len + 1), int(random, len + 1));
        break;
    }
  }
  return out.length > maxLength ? out.subarray(0, maxLength) : out;
}
