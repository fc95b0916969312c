// Stored transfers (PROTOCOL.md §6) against testdata/vectors/stored.json,
// which the Go tests check too.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fromHex, toHex } from "../src/protocol/b64";
import {
  openManifest, openStream, readToken, records, recordSize, sealedRecordSize, sealedSize, storedKeys, StoredError, type StoredKeys,
} from "../src/crypto/stored";

const v = JSON.parse(readFileSync(new URL("../../testdata/vectors/stored.json", import.meta.url), "utf8"));
const secret = fromHex(v.secretHex);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

async function seal(k: StoredKeys, total: number): Promise<Uint8Array> {
  const plain = pattern(total);
  const n = records(total);
  const out = new Uint8Array(sealedSize(total));
  for (let i = 0; i < n; i++) {
    const rec = await k.sealRecord(plain.subarray(i * recordSize, Math.min(total, (i + 1) * recordSize)), i, i === n - 1);
    out.set(rec, i * sealedRecordSize);
  }
  return out;
}

// pieces delivers b in uneven parts, as a network would.
async function* pieces(b: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let o = 0, n = 1; o < b.length; o += n, n = (n * 7 + 3) % 40000 + 1) yield b.subarray(o, o + n);
}

async function open(k: StoredKeys, b: Uint8Array, total: number, first = 0): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of openStream(k, total, first, pieces(b))) parts.push(p);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
}

test("stored.json: read token and records", async () => {
  assert.equal(v.recordSize, recordSize);
  assert.equal(await readToken(secret), v.readToken);
  const k = await storedKeys(secret, v.id, fromHex(v.saltHex));
  for (const s of v.streams) {
    const sealed = await seal(k, s.total);
    assert.equal(sha(sealed), s.sealedSha256, `total ${s.total}`);
    if (s.sealedHex) assert.equal(toHex(sealed), s.sealedHex);
    if (s.finalHex) assert.equal(toHex(sealed.subarray((records(s.total) - 1) * sealedRecordSize)), s.finalHex);
    assert.deepEqual(await open(k, sealed, s.total), pattern(s.total));
    // A resumed download reads the rest from the next record.
    if (records(s.total) > 1) {
      assert.deepEqual(await open(k, sealed.subarray(sealedRecordSize), s.total, 1), pattern(s.total).subarray(recordSize));
    }
  }
});

test("stored.json: tampered streams", async () => {
  const k = await storedKeys(secret, v.id, fromHex(v.saltHex));
  const total = 2 * recordSize + 100;
  const base = await seal(k, total);
  for (const t of v.tampered) {
    let b = base.slice();
    switch (t.op) {
      case "flip": b[t.at] ^= 1; break;
      case "truncate": b = b.slice(0, t.at); break;
      case "swap": {
        const a = b.slice(t.at * sealedRecordSize, (t.at + 1) * sealedRecordSize);
        b.set(b.slice((t.b ?? 0) * sealedRecordSize, ((t.b ?? 0) + 1) * sealedRecordSize), t.at * sealedRecordSize);
        b.set(a, (t.b ?? 0) * sealedRecordSize);
        break;
      }
      case "append": b = new Uint8Array(base.length + 1); b.set(base); break;
      default: assert.fail(`unknown op ${t.op}`);
    }
    const got: Uint8Array[] = [];
    await assert.rejects(
      (async () => { for await (const p of openStream(k, total, 0, pieces(b))) got.push(p); })(),
      (e: unknown) => e instanceof StoredError && e.kind === t.error,
      t.name,
    );
    // Only records that opened came out, each whole and in place.
    got.forEach((p, i) => assert.deepEqual(p, pattern(total).subarray(i * recordSize, i * recordSize + p.length), t.name));
  }
});

test("stored.json: manifests", async () => {
  for (const m of v.manifests) {
    const blob = fromHex(m.sealedHex);
    if (m.error) {
      await assert.rejects(openManifest(secret, v.id, blob), (e: unknown) => e instanceof StoredError && e.kind === m.error, m.name);
      continue;
    }
    const { manifest, keys } = await openManifest(secret, v.id, blob);
    const want = JSON.parse(m.plaintext);
    assert.deepEqual(manifest, want);
    assert.equal(toHex(keys.salt), v.saltHex);
    // Sealing the same manifest with the same nonce gives the same bytes.
    assert.equal(toHex(await keys.sealManifest(manifest, blob.slice(20, 32))), m.sealedHex);
    await assert.rejects(openManifest(secret, "BBECAwQFBgcI", blob), StoredError);
  }
});
