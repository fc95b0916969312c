// Data channel frames (PROTOCOL.md §4): CONTROL, CHUNK, ACK, NACK.
// All integers are big-endian.

import type { Control } from "./control";
import { chunkHeaderLen, flagResend, frameAck, frameChunk, frameControl, frameNack, hashLen } from "./constants_gen";

// Browser-bound messages stay within browserMaxMessage, header included.
export {
  browserChunkSize, browserMaxMessage, chunkHeaderLen, flagResend, frameAck, frameChunk, frameControl, frameNack, hashLen,
} from "./constants_gen";

export class FrameError extends Error {}

export interface ChunkHeader {
  flags: number;
  file: number;
  index: number;
}

// writeChunkHeader fills the first 42 bytes of frame.
export function writeChunkHeader(frame: Uint8Array, flags: number, file: number, index: number, hash: Uint8Array): void {
  const v = new DataView(frame.buffer, frame.byteOffset, chunkHeaderLen);
  v.setUint8(0, frameChunk);
  v.setUint8(1, flags);
  v.setUint32(2, file);
  v.setUint32(6, index);
  frame.set(hash.subarray(0, hashLen), 10);
}

export function encodeChunk(flags: number, file: number, index: number, hash: Uint8Array, data: Uint8Array): Uint8Array {
  const f = new Uint8Array(chunkHeaderLen + data.length);
  writeChunkHeader(f, flags, file, index, hash);
  f.set(data, chunkHeaderLen);
  return f;
}

export function parseChunkHeader(b: Uint8Array): ChunkHeader {
  if (b.length < chunkHeaderLen) throw new FrameError("chunk frame too short");
  if (b[0] !== frameChunk) throw new FrameError("not a chunk frame");
  const v = new DataView(b.buffer, b.byteOffset, chunkHeaderLen);
  const flags = v.getUint8(1);
  if ((flags & ~flagResend) !== 0) throw new FrameError("unknown chunk flags");
  return { flags, file: v.getUint32(2), index: v.getUint32(6) };
}

export function chunkHash(b: Uint8Array): Uint8Array {
  return b.subarray(10, chunkHeaderLen);
}

export function chunkData(b: Uint8Array): Uint8Array {
  return b.subarray(chunkHeaderLen);
}

export interface Ack {
  credit: number;
  committed: number; // bytes; exact up to 2^53
}

export function encodeAck(a: Ack): Uint8Array {
  const b = new Uint8Array(13);
  const v = new DataView(b.buffer);
  v.setUint8(0, frameAck);
  v.setUint32(1, a.credit);
  v.setBigUint64(5, BigInt(a.committed));
  return b;
}

export function parseAck(b: Uint8Array): Ack {
  if (b.length !== 13 || b[0] !== frameAck) throw new FrameError("bad ack frame");
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  return { credit: v.getUint32(1), committed: Number(v.getBigUint64(5)) };
}

export interface Nack {
  file: number;
  index: number;
}

export function encodeNack(n: Nack): Uint8Array {
  const b = new Uint8Array(9);
  const v = new DataView(b.buffer);
  v.setUint8(0, frameNack);
  v.setUint32(1, n.file);
  v.setUint32(5, n.index);
  return b;
}

export function parseNack(b: Uint8Array): Nack {
  if (b.length !== 9 || b[0] !== frameNack) throw new FrameError("bad nack frame");
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  return { file: v.getUint32(1), index: v.getUint32(5) };
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function encodeControl(m: Control): Uint8Array {
  // "t" first, as the Go side writes it; receivers do not depend on order.
  const { t, ...rest } = m as { t: string } & Record<string, unknown>;
  const js = JSON.stringify({ t, ...rest });
  const body = enc.encode(js);
  const b = new Uint8Array(1 + body.length);
  b[0] = frameControl;
  b.set(body, 1);
  return b;
}

export function parseControl(b: Uint8Array): { t: string } & Record<string, unknown> {
  if (b.length < 1 || b[0] !== frameControl) throw new FrameError("not a control frame");
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(b.subarray(1)));
  } catch {
    throw new FrameError("malformed control message");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v) || typeof (v as { t?: unknown }).t !== "string") {
    throw new FrameError("control message without type");
  }
  return v as { t: string } & Record<string, unknown>;
}
