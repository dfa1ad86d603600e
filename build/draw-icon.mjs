// Draws the app icon into build/icon.png (1024x1024 RGBA): electron-builder makes the .ico
// (Windows), .icns (macOS) and the Linux sizes from it. Our own drawing, no download and no
// image library: shapes as signed distances, antialiased by coverage, written as a PNG.
//   node build/draw-icon.mjs [output.png] [size]
// The picture: a power/boot symbol on a rounded blue square, over three linked machines.
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const output = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), 'icon.png');
const size = Number(process.argv[3] ?? 1024);

// Distances in units of the icon's width (0..1); negative inside.
const roundedBox = (x, y, cx, cy, hw, hh, r) => {
  const qx = Math.abs(x - cx) - hw + r;
  const qy = Math.abs(y - cy) - hh + r;
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
};
const segment = (x, y, ax, ay, bx, by, r) => {
  const px = x - ax, py = y - ay, dx = bx - ax, dy = by - ay;
  const t = Math.max(0, Math.min(1, (px * dx + py * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - dx * t, py - dy * t) - r;
};
/** A ring of radius `radius`, `width` thick, open over `gap` radians at the top. */
const openRing = (x, y, cx, cy, radius, width, gap) => {
  const angle = Math.atan2(x - cx, -(y - cy)); // 0 = straight up
  if (Math.abs(angle) < gap / 2) {
    // Distance to the nearer rounded end of the arc.
    const ends = [-gap / 2, gap / 2].map((a) => Math.hypot(x - (cx + radius * Math.sin(a)), y - (cy - radius * Math.cos(a))));
    return Math.min(...ends) - width / 2;
  }
  return Math.abs(Math.hypot(x - cx, y - cy) - radius) - width / 2;
};

const machines = [0.3, 0.5, 0.7].map((cx) => ({ cx, cy: 0.8 }));

/** Colour of one point as [r, g, b, a] layers painted in order. */
function layers(x, y) {
  const out = [];
  // Background: rounded square with a vertical blue gradient (macOS-like margins).
  const bg = roundedBox(x, y, 0.5, 0.5, 0.44, 0.44, 0.1);
  const t = (y - 0.06) / 0.88;
  out.push([bg, [22 + 10 * t, 86 - 40 * t, 170 - 60 * t]]);
  // Network: a bus line and three machines under it.
  out.push([segment(x, y, 0.3, 0.69, 0.7, 0.69, 0.012), [150, 200, 255]]);
  for (const m of machines) {
    out.push([segment(x, y, m.cx, 0.69, m.cx, 0.75, 0.012), [150, 200, 255]]);
    out.push([roundedBox(x, y, m.cx, m.cy, 0.06, 0.045, 0.015), [150, 200, 255]]);
    out.push([roundedBox(x, y, m.cx, m.cy - 0.005, 0.042, 0.025, 0.006), [24, 58, 120]]);
  }
  // Boot: the power symbol, and the line from it down to the bus.
  out.push([segment(x, y, 0.5, 0.6, 0.5, 0.69, 0.012), [150, 200, 255]]);
  out.push([openRing(x, y, 0.5, 0.4, 0.17, 0.055, 1.1), [255, 255, 255]]);
  out.push([segment(x, y, 0.5, 0.19, 0.5, 0.39, 0.0275), [255, 255, 255]]);
  return out;
}

const pixelWidth = 1 / size;
const raw = Buffer.alloc((size * 4 + 1) * size);
for (let py = 0; py < size; py++) {
  raw[py * (size * 4 + 1)] = 0; // filter: none
  for (let px = 0; px < size; px++) {
    const x = (px + 0.5) / size;
    const y = (py + 0.5) / size;
    let r = 0, g = 0, b = 0, a = 0;
    for (const [distance, colour] of layers(x, y)) {
      const coverage = Math.max(0, Math.min(1, 0.5 - distance / pixelWidth));
      if (coverage === 0) continue;
      // "over" compositing, premultiplied.
      r = colour[0] * coverage + r * (1 - coverage);
      g = colour[1] * coverage + g * (1 - coverage);
      b = colour[2] * coverage + b * (1 - coverage);
      a = coverage + a * (1 - coverage);
    }
    const o = py * (size * 4 + 1) + 1 + px * 4;
    raw[o] = a ? Math.round(r / a) : 0;
    raw[o + 1] = a ? Math.round(g / a) : 0;
    raw[o + 2] = a ? Math.round(b / a) : 0;
    raw[o + 3] = Math.round(a * 255);
  }
}

// PNG (ISO/IEC 15948): signature, IHDR, IDAT (zlib), IEND; each chunk length+type+data+CRC.
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (buf) => {
  let c = 0xffffffff;
  for (const byte of buf) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
};
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(size, 0);
ihdr.writeUInt32BE(size, 4);
ihdr[8] = 8; // bit depth
ihdr[9] = 6; // RGBA
writeFileSync(
  output,
  Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]),
);
console.log(`wrote ${output} (${size}x${size})`);
