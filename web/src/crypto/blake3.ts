// BLAKE3 for chunk hashes and file roots (PROTOCOL.md §4.3-4.4).
//
// hash-wasm was chosen over @noble/hashes after measuring both in headless
// Chromium on the 2-core dev machine with 65 472-byte chunks: hash-wasm
// ~670 MB/s, @noble/hashes ~18 MB/s (see web/README.md). It needs the CSP
// source 'wasm-unsafe-eval'.
import { createBLAKE3, type IHasher } from "hash-wasm";
import { toHex } from "../protocol/b64";
import { hashLen } from "../protocol/frames";

let hasher: IHasher | null = null;

// initBlake3 compiles the WASM module once; call it before hashing.
export async function initBlake3(): Promise<void> {
  if (!hasher) hasher = await createBLAKE3(256);
}

function h(): IHasher {
  if (!hasher) throw new Error("blake3: initBlake3 not awaited");
  return hasher;
}

export function blake3(data: Uint8Array): Uint8Array {
  const x = h();
  x.init();
  x.update(data);
  return x.digest("binary");
}

const rootLabel = new TextEncoder().encode("ferry/1 root");

// rootHex computes BLAKE3("ferry/1 root" ‖ size u64 ‖ chunkSize u32 ‖ h_0 ‖ …)
// from the concatenated chunk hashes.
export function rootHex(size: number, chunkSize: number, hashes: Uint8Array): string {
  if (hashes.length % hashLen !== 0) throw new Error("blake3: bad hash list");
  const x = h();
  x.init();
  x.update(rootHeader(size, chunkSize));
  x.update(hashes);
  return toHex(x.digest("binary"));
}

function rootHeader(size: number, chunkSize: number): Uint8Array {
  const hdr = new Uint8Array(rootLabel.length + 12);
  hdr.set(rootLabel);
  const v = new DataView(hdr.buffer);
  v.setBigUint64(rootLabel.length, BigInt(size));
  v.setUint32(rootLabel.length + 8, chunkSize);
  return hdr;
}

// RootFolder computes the same root incrementally: fold takes the next
// chunk hashes in order. Between calls only the hasher's saved state
// (about 2 KiB) is kept, so the one WASM hasher serves every file.
export class RootFolder {
  private state: Uint8Array | null = null;

  constructor(
    private size: number,
    private chunkSize: number,
  ) {}

  private resume(): IHasher {
    const x = h();
    if (this.state) x.load(this.state);
    else {
      x.init();
      x.update(rootHeader(this.size, this.chunkSize));
    }
    return x;
  }

  fold(hashes: Uint8Array): void {
    if (hashes.length % hashLen !== 0) throw new Error("blake3: bad hash list");
    const x = this.resume();
    x.update(hashes);
    this.state = x.save();
  }

  hex(): string {
    return toHex(this.resume().digest("binary"));
  }
}
