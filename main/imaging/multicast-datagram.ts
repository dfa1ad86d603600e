// The image stream's two datagrams: data from the host to the group, and each receiver's
// feedback to the host (unicast). All integers big-endian. build/imaging-env/bb-stream-recv.c
// reads and writes the same layouts.
//
// Data (host -> group, UDP, TTL 1):
//    0                   1                   2                   3
//   +-------+-------+-------+-------+-------+-------+-------+-------+
//   |  'B'  |  'B'  |  'S'  |  '1'  |           session             |
//   +-------+-------+-------+-------+-------+-------+-------+-------+
//   |        sequence number        |          chunk index          |
//   +-------+-------+-------+-------+-------+-------+-------+-------+
//   |     chunk length (bytes)      |   offset of payload in chunk  |
//   +-------+-------+-------+-------+-------+-------+-------+-------+
//   |        chunks in image        |  payload (<= 1400 bytes) ...
//   +-------+-------+-------+-------+---
// Every payload but a chunk's last is exactly DATA_PAYLOAD bytes, so offset / DATA_PAYLOAD
// numbers the piece. The sequence number counts datagrams of the session, so a receiver
// counts loss from its gaps whatever chunk they fell in.
//
// Feedback (receiver -> host's stream port, unicast, about every 100 ms):
//   0  'BBR1'    4  session    8  MAC (6 bytes)   14  flags (1 done, 2 started)   15 window (chunks)
//  16  position: the next chunk it writes (image-wide index)
//  20  datagrams received   24  datagrams lost (sequence gaps)   28  chunks dropped ahead of its window
//  32  KiB written from the stream  36  KiB written by repair (HTTP): together the bytes written (cumulative, wrap at 2^32)
//  40  need: the first chunk from its position on that it does not hold complete

export const DATA_MAGIC = 0x42425331; // 'BBS1'
export const FEEDBACK_MAGIC = 0x42425231; // 'BBR1'
export const DATA_HEADER_BYTES = 28;
/** 28 + 1400 + 28 (IPv4 and UDP headers) stays under a 1500-byte MTU with room for a VLAN tag: no IP fragments. */
export const DATA_PAYLOAD = 1400;
export const FEEDBACK_BYTES = 44;

export const FEEDBACK_DONE = 1;

export interface DataHeader {
  session: number;
  seq: number;
  chunk: number;
  chunkLength: number;
  offset: number;
  chunks: number;
}

export interface Feedback {
  session: number;
  mac: string;
  done: boolean;
  /** chunks the receiver keeps ahead of its position */
  window: number;
  position: number;
  need: number;
  received: number;
  lost: number;
  overrun: number;
  streamKiB: number;
  repairKiB: number;
}

export function encodeData(header: DataHeader, payload: Buffer, into?: Buffer): Buffer {
  if (payload.length > DATA_PAYLOAD) throw new RangeError(`payload of ${payload.length} bytes exceeds ${DATA_PAYLOAD}`);
  const out =
    into && into.length >= DATA_HEADER_BYTES + payload.length
      ? into.subarray(0, DATA_HEADER_BYTES + payload.length)
      : Buffer.alloc(DATA_HEADER_BYTES + payload.length);
  encodeDataHeader(header, out);
  payload.copy(out, DATA_HEADER_BYTES);
  return out;
}

/** Writes a data datagram's header into the first DATA_HEADER_BYTES of `out` (the payload goes beside it, uncopied). */
export function encodeDataHeader(header: DataHeader, out: Buffer): Buffer {
  out.writeUInt32BE(DATA_MAGIC, 0);
  out.writeUInt32BE(header.session >>> 0, 4);
  out.writeUInt32BE(header.seq >>> 0, 8);
  out.writeUInt32BE(header.chunk, 12);
  out.writeUInt32BE(header.chunkLength, 16);
  out.writeUInt32BE(header.offset, 20);
  out.writeUInt32BE(header.chunks, 24);
  return out;
}

/** The header and payload of a data datagram, or undefined for anything else or a malformed one. */
export function decodeData(packet: Buffer): { header: DataHeader; payload: Buffer } | undefined {
  if (packet.length < DATA_HEADER_BYTES || packet.readUInt32BE(0) !== DATA_MAGIC) return undefined;
  const header: DataHeader = {
    session: packet.readUInt32BE(4),
    seq: packet.readUInt32BE(8),
    chunk: packet.readUInt32BE(12),
    chunkLength: packet.readUInt32BE(16),
    offset: packet.readUInt32BE(20),
    chunks: packet.readUInt32BE(24),
  };
  const payload = packet.subarray(DATA_HEADER_BYTES);
  const expected = Math.min(DATA_PAYLOAD, header.chunkLength - header.offset);
  if (header.offset % DATA_PAYLOAD !== 0 || header.offset >= header.chunkLength || payload.length !== expected || header.chunk >= header.chunks)
    return undefined;
  return { header, payload };
}

function macBytes(mac: string): Buffer {
  const hex = mac.replace(/[^0-9a-fA-F]/g, '');
  if (hex.length !== 12) throw new RangeError(`"${mac}" is not a MAC address`);
  return Buffer.from(hex, 'hex');
}

export function encodeFeedback(f: Feedback): Buffer {
  const out = Buffer.alloc(FEEDBACK_BYTES);
  out.writeUInt32BE(FEEDBACK_MAGIC, 0);
  out.writeUInt32BE(f.session >>> 0, 4);
  macBytes(f.mac).copy(out, 8);
  out.writeUInt8(f.done ? FEEDBACK_DONE : 0, 14);
  out.writeUInt8(Math.min(255, f.window), 15);
  out.writeUInt32BE(f.position >>> 0, 16);
  out.writeUInt32BE(f.received >>> 0, 20);
  out.writeUInt32BE(f.lost >>> 0, 24);
  out.writeUInt32BE(f.overrun >>> 0, 28);
  out.writeUInt32BE(f.streamKiB >>> 0, 32);
  out.writeUInt32BE(f.repairKiB >>> 0, 36);
  out.writeUInt32BE(f.need >>> 0, 40);
  return out;
}

export function decodeFeedback(packet: Buffer): Feedback | undefined {
  if (packet.length < FEEDBACK_BYTES || packet.readUInt32BE(0) !== FEEDBACK_MAGIC) return undefined;
  const mac = [...packet.subarray(8, 14)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  return {
    session: packet.readUInt32BE(4),
    mac,
    done: (packet.readUInt8(14) & FEEDBACK_DONE) !== 0,
    window: packet.readUInt8(15),
    position: packet.readUInt32BE(16),
    need: packet.readUInt32BE(40),
    received: packet.readUInt32BE(20),
    lost: packet.readUInt32BE(24),
    overrun: packet.readUInt32BE(28),
    streamKiB: packet.readUInt32BE(32),
    repairKiB: packet.readUInt32BE(36),
  };
}
