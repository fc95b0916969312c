// The receiver's chunk bookkeeping (src/transfer/chunks.ts) against naive
// models: ChunkSet against a Set of indices, FileHashes' incremental root
// against rootHex over every hash, for random orders of arrival, commits,
// drops and re-sends.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ChunkSet, FileHashes } from "../src/transfer/chunks";
import { blake3, initBlake3, rootHex, RootFolder } from "../src/crypto/blake3";

// rng is a small deterministic generator (xorshift32) so a failure repeats.
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function modelRanges(m: Set<number>): [number, number][] {
  const out: [number, number][] = [];
  for (const i of [...m].sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last && last[1] === i) last[1]++;
    else out.push([i, i + 1]);
  }
  return out;
}

test("ChunkSet matches a Set of indices", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const r = rng(seed);
    const span = 1 + Math.floor(r() * (seed % 3 === 0 ? 40 : 400));
    const base = seed % 5 === 0 ? 2 ** 32 - 2 - span : 0; // near the largest index
    const s = new ChunkSet();
    const m = new Set<number>();
    for (let op = 0; op < 600; op++) {
      const i = base + Math.floor(r() * span);
      const p = r();
      if (p < 0.6) {
        assert.equal(s.add(i), !m.has(i), `seed ${seed} add ${i}`);
        m.add(i);
      } else if (p < 0.85) {
        assert.equal(s.delete(i), m.has(i), `seed ${seed} delete ${i}`);
        m.delete(i);
      } else {
        assert.equal(s.has(i), m.has(i), `seed ${seed} has ${i}`);
      }
      assert.equal(s.size, m.size);
      if (op % 37 === 0) assert.deepEqual(s.ranges(), modelRanges(m), `seed ${seed} op ${op}`);
    }
    assert.deepEqual(s.ranges(), modelRanges(m), `seed ${seed}`);
    for (let i = base - 1; i <= base + span; i++) if (i >= 0) assert.equal(s.has(i), m.has(i), `seed ${seed} has ${i}`);
  }
});

test("ChunkSet stays small for chunks in order and for scattered chunks of a huge file", () => {
  const s = new ChunkSet();
  for (let i = 0; i < 100_000; i++) s.add(i);
  assert.equal(s.runs, 1);
  assert.deepEqual(s.ranges(), [[0, 100_000]]);
  const t = new ChunkSet();
  const n = 2 ** 32 - 2;
  for (let k = 0; k < 5000; k++) t.add(Math.floor((k * n) / 5000) + 1);
  assert.equal(t.size, 5000);
  assert.equal(t.runs, 5000);
  const second = Math.floor(n / 5000) + 1;
  assert.ok(t.has(second) && !t.has(second + 1) && !t.has(second - 1));
  assert.ok(t.has(n - Math.ceil(n / 5000) + 1) || t.has(Math.floor((4999 * n) / 5000) + 1));
});

test("FileHashes folds the root of any commit order like rootHex over all hashes", async () => {
  await initBlake3();
  const chunkSize = 1024;
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(seed * 7919);
    // Up to about 5000 chunks so that folding in 2048-hash batches happens.
    const n = seed % 4 === 0 ? Math.floor(r() * 5000) : Math.floor(r() * 200);
    const size = n === 0 ? 0 : (n - 1) * chunkSize + 1 + Math.floor(r() * chunkSize);
    const hashes = new Uint8Array(n * 32);
    for (let k = 0; k < n; k++) hashes.set(blake3(Uint8Array.of(k & 255, k >> 8, seed)), k * 32);
    const fh = new FileHashes(n, new RootFolder(size, chunkSize));
    // Verify chunks in a random order; commit a random verified one or
    // drop it (a sequential sink's reconnection), which sends it again.
    const todo = Array.from({ length: n }, (_, k) => k);
    for (let k = todo.length - 1; k > 0; k--) {
      const j = Math.floor(r() * (k + 1));
      [todo[k], todo[j]] = [todo[j]!, todo[k]!];
    }
    const verified: number[] = [];
    let committed = 0;
    while (committed < n) {
      if (todo.length > 0 && (verified.length === 0 || r() < 0.5)) {
        const k = todo.pop()!;
        fh.verify(k, hashes.subarray(k * 32, k * 32 + 32));
        verified.push(k);
        continue;
      }
      const at = Math.floor(r() * verified.length);
      const k = verified[at]!;
      verified.splice(at, 1);
      if (r() < 0.1) {
        fh.drop(k);
        todo.splice(Math.floor(r() * (todo.length + 1)), 0, k);
        continue;
      }
      assert.equal(fh.root(), "", "no root before every chunk is committed");
      fh.commit(k);
      committed++;
      assert.equal(fh.committed, committed);
    }
    assert.equal(fh.root(), rootHex(size, chunkSize, hashes), `seed ${seed} n ${n}`);
    assert.equal(fh.pending, 0);
  }
});

test("FileHashes refuses a chunk committed twice or never verified", async () => {
  await initBlake3();
  const fh = new FileHashes(4, new RootFolder(4096, 1024));
  const h = blake3(Uint8Array.of(1));
  assert.throws(() => fh.commit(0));
  fh.verify(2, h);
  fh.commit(2);
  fh.verify(2, h);
  assert.throws(() => fh.commit(2));
  fh.verify(0, h);
  fh.commit(0);
  fh.verify(0, h);
  assert.throws(() => fh.commit(0));
});

test("FileHashes holds only what is out of order", async () => {
  await initBlake3();
  const n = 2 ** 32 - 2;
  const fh = new FileHashes(n, new RootFolder(n * 1024, 1024));
  const h = blake3(Uint8Array.of(9));
  for (let k = 0; k < 3000; k++) {
    const i = 1 + Math.floor((k * n) / 3000);
    fh.verify(i, h);
    fh.commit(i);
  }
  assert.equal(fh.pending, 3000);
  for (let i = 0; i < 100_000; i++) {
    if (i === 1) continue;
    fh.verify(i, h);
    fh.commit(i);
  }
  // Chunk 1 was among the scattered ones: [0, 100000) are folded in.
  assert.equal(fh.pending, 2999);
  assert.equal(fh.committed, 100_000 + 2999);
});
