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
import { checkAccept, checkManifest, foldPath, lowerCodePoint, ManifestError, pathProblem, showName } from "../src/protocol/control";
import { closeMessage } from "../src/protocol/signal";
import { close, forbidden } from "../src/protocol/constants_gen";
import { unicodeVersion } from "../src/protocol/fold_gen";

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

// reasonOf runs check and returns the reason it refuses with, or "".
function reasonOf(check: () => unknown, name: string): string {
  try {
    check();
    return "";
  } catch (e) {
    assert.ok(e instanceof ManifestError, `${name}: ${String(e)} is not a ManifestError`);
    return e.reason;
  }
}

test("manifests.json", () => {
  const v = load("manifests.json");
  assert.ok(v.manifests.length > 0);
  for (const m of v.manifests) {
    assert.equal(reasonOf(() => checkManifest(JSON.parse(m.json)), m.name), m.reason ?? "", m.name);
    assert.equal(m.valid, !m.reason);
  }
});

test("accepts.json", () => {
  const v = load("accepts.json");
  const man = checkManifest(v.manifest);
  assert.ok(v.accepts.length > 0);
  for (const a of v.accepts) {
    assert.equal(reasonOf(() => checkAccept(JSON.parse(a.json), man), a.name), a.reason ?? "", a.name);
    assert.equal(a.valid, !a.reason);
  }
});

test("fold.json", () => {
  const v = load("fold.json");
  assert.equal(unicodeVersion, v.unicodeVersion);
  const lower = new Map<number, number>();
  for (const p of v.lower as string[]) {
    const [c, l] = p.split(":").map((h) => parseInt(h, 16));
    lower.set(c!, l!);
  }
  // Every code point, one by one and inside a path.
  for (let c = 0; c <= 0x10ffff; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const want = lower.get(c) ?? c;
    if (lowerCodePoint(c) !== want) assert.fail(`lowerCodePoint(U+${c.toString(16)}) = U+${lowerCodePoint(c).toString(16)}, want U+${want.toString(16)}`);
  }
  for (const [c, l] of lower) assert.equal(foldPath(`x/${String.fromCodePoint(c)}.txt`), `x/${String.fromCodePoint(l)}.txt`);
  assert.equal(foldPath("\u0130STANBUL \u039f\u0394\u039f\u03a3"), "istanbul \u03bf\u03b4\u03bf\u03c3");
});

test("closes.json", () => {
  const v = load("closes.json");
  const lost = closeMessage(1006);
  const codes = new Set<number>(Object.values(close));
  for (const c of v.closes) {
    assert.ok(codes.has(c.code), `close code ${c.code} is not in constants_gen.ts`);
    assert.notEqual(closeMessage(c.code, c.reason), lost, `close ${c.code} ${c.reason} has no message of its own`);
  }
  for (const code of codes) assert.ok(v.closes.some((c: { code: number }) => c.code === code), `the server never closes with ${code}`);
  // The two 4009 reasons the server sends are told apart, and from others.
  const reasons = v.closes.filter((c: { code: number }) => c.code === close.forbidden).map((c: { reason: string }) => c.reason);
  assert.deepEqual(reasons.sort(), [forbidden.network, forbidden.signIn].sort());
  const msgs = new Set(reasons.map((r: string) => closeMessage(close.forbidden, r)));
  msgs.add(closeMessage(close.forbidden, "something else"));
  assert.equal(msgs.size, 3);
});
