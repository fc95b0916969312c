// The shared byte-exact vectors in testdata/vectors, checked against the
// TypeScript implementation (the Go tests check the same files).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fromHex, toHex } from "../src/protocol/b64";
import { blake3, initBlake3, rootHex } from "../src/crypto/blake3";
import { derive, encodeHello, parseHello } from "../src/crypto/handshake";
import { words } from "../src/crypto/words";
import {
  chunkData, chunkHash, encodeAck, encodeChunk, encodeControl, encodeNack, parseAck, parseChunkHeader, parseControl, parseNack,
} from "../src/protocol/frames";
import { LinkError, parseLink } from "../src/protocol/ticket";
import { checkManifest, pathProblem, showName } from "../src/protocol/control";

const dir = new URL("../../testdata/vectors/", import.meta.url);
const load = (name: string): any => JSON.parse(readFileSync(new URL(name, dir), "utf8"));

test("links.json", () => {
  const vs = load("links.json");
  assert.ok(vs.length > 0);
  for (const v of vs) {
    if (v.error) {
      assert.throws(() => parseLink(v.link), (e: unknown) => e instanceof LinkError && e.kind === v.error, v.link);
      continue;
    }
    const { base, ticket } = parseLink(v.link);
    assert.equal(base, v.base, v.link);
    assert.equal(ticket.id, v.id);
    assert.equal(toHex(ticket.secret), v.secretHex);
  }
});

test("handshake.json", async () => {
  const v = load("handshake.json");
  assert.equal(words.length, v.wordCount);
  const hs = parseHello(fromHex(v.helloSenderHex));
  const hr = parseHello(fromHex(v.helloReceiverHex));
  assert.equal(toHex(encodeHello(hs)), v.helloSenderHex);
  assert.equal(toHex(encodeHello(hr)), v.helloReceiverHex);
  const secret = fromHex(v.secretHex);
  const ks = await derive(secret, v.contextId, hs, hr);
  const kr = await derive(secret, v.contextId, hr, hs);
  assert.equal(toHex(ks.confirm), v.confirmSenderHex);
  assert.equal(toHex(kr.confirm), v.confirmReceiverHex);
  await ks.checkConfirm(kr.confirm);
  await kr.checkConfirm(ks.confirm);
  await assert.rejects(ks.checkConfirm(ks.confirm));
  for (const k of [ks, kr]) {
    assert.deepEqual(k.phrase, v.phrase);
    assert.equal(k.sessionId, v.sessionId);
    assert.equal(toHex(k.sessionSecret), v.sessionSecretHex);
  }
  const dec = new TextDecoder();
  for (const s of v.sealed) {
    const [from, to] = s.dir === "s2r" ? [ks, kr] : [kr, ks];
    const frame = await from.seal(new TextEncoder().encode(s.plaintext));
    assert.equal(toHex(frame), s.frameHex);
    assert.equal(dec.decode(await to.open(frame)), s.plaintext);
  }
  // Replays and tampering are refused.
  const f = await ks.seal(new TextEncoder().encode("{}"));
  const tampered = f.slice();
  tampered[tampered.length - 1]! ^= 1;
  await assert.rejects(kr.open(tampered));
  await kr.open(f);
  await assert.rejects(kr.open(f));
  // A wrong secret fails confirmation.
  const wrong = await derive(new Uint8Array(16), v.contextId, hr, hs);
  await assert.rejects(ks.checkConfirm(wrong.confirm));
});

test("frames.json", async () => {
  await initBlake3();
  for (const v of load("frames.json")) {
    const b = fromHex(v.frameHex);
    switch (v.name) {
      case "chunk": {
        const h = parseChunkHeader(b);
        const re = encodeChunk(h.flags, h.file, h.index, chunkHash(b), chunkData(b));
        assert.equal(toHex(re), v.frameHex);
        assert.equal(toHex(blake3(chunkData(b))), toHex(chunkHash(b)), "chunk hash is BLAKE3 of the data");
        break;
      }
      case "ack":
        assert.equal(toHex(encodeAck(parseAck(b))), v.frameHex);
        break;
      case "nack":
        assert.equal(toHex(encodeNack(parseNack(b))), v.frameHex);
        break;
      case "control":
        assert.deepEqual(parseControl(b), JSON.parse(v.json));
        assert.equal(toHex(encodeControl(JSON.parse(v.json))), v.frameHex);
        break;
      default:
        assert.fail(`unknown vector ${v.name}`);
    }
  }
});

test("roots.json", async () => {
  await initBlake3();
  const vs = load("roots.json");
  assert.ok(vs.length > 0);
  for (const v of vs) {
    // data is repeated to fill size bytes, as the Go generator does.
    const seed = new TextEncoder().encode(v.data);
    const data = new Uint8Array(v.size);
    for (let i = 0; i < v.size; i++) data[i] = seed[i % seed.length]!;
    const n = Math.ceil(v.size / v.chunkSize);
    const hashes = new Uint8Array(32 * n);
    for (let k = 0; k < n; k++) {
      const h = blake3(data.subarray(k * v.chunkSize, Math.min((k + 1) * v.chunkSize, v.size)));
      assert.equal(toHex(h), v.chunkHashes[k]);
      hashes.set(h, 32 * k);
    }
    assert.equal(rootHex(v.size, v.chunkSize, hashes), v.root);
  }
});

test("paths.json", () => {
  const v = load("paths.json");
  assert.ok(v.paths.length > 0 && v.duplicates.length > 0);
  for (const p of v.paths) {
    assert.equal(pathProblem(p.path), p.reason ?? "", showName(p.path));
    assert.equal(p.valid, !p.reason);
  }
  for (const d of v.duplicates) {
    const files = d.paths.map((path: string) => ({ path, size: 1 }));
    const m = { t: "manifest", version: 1, chunkSize: 65536, totalSize: files.length, files };
    if (d.valid) assert.doesNotThrow(() => checkManifest(m), d.paths.map(showName).join(" "));
    else assert.throws(() => checkManifest(m), Error, d.paths.map(showName).join(" "));
  }
});
