// Unit tests of the protocol helpers beyond the shared vectors: strict
// decoding, manifest and accept validation, frame errors.
import assert from "node:assert/strict";
import { test } from "node:test";
import { b64urlDecode, b64urlEncode } from "../src/protocol/b64";
import { checkAccept, checkManifest, chunkCount, chunkLen, pathProblem, sameManifest, showName } from "../src/protocol/control";
import { FrameError, encodeChunk, parseAck, parseChunkHeader, parseControl, parseNack } from "../src/protocol/frames";
import { closeMessage, forbidden } from "../src/protocol/signal";
import { LinkError, linkFor, newSecret, parseLink, parseTicket, ticketString } from "../src/protocol/ticket";

test("base64url round trip and strictness", () => {
  for (let n = 0; n < 40; n++) {
    const b = new Uint8Array(n).map((_, i) => (i * 37 + n) & 255);
    assert.deepEqual(b64urlDecode(b64urlEncode(b)), b);
  }
  assert.equal(b64urlDecode("AAECAwQFBgcI=")?.length, undefined, "padding is refused");
  assert.equal(b64urlDecode("AB"), null, "non-zero trailing bits are refused");
  assert.equal(b64urlDecode("A"), null, "impossible length");
  assert.equal(b64urlDecode("AA+/"), null, "standard alphabet is refused");
  assert.equal(b64urlDecode("AAé"), null);
});

test("tickets and links round trip", () => {
  const t = { id: "AAECAwQFBgcI", secret: newSecret() };
  assert.equal(t.secret.length, 16);
  const link = linkFor("https://ferry.example/sub/", t);
  assert.ok(link.startsWith("https://ferry.example/sub/r#AAECAwQFBgcI."));
  const back = parseLink(link);
  assert.equal(back.base, "https://ferry.example/sub");
  assert.deepEqual(back.ticket, t);
  assert.deepEqual(parseTicket(ticketString(t)), t);
  assert.throws(() => parseTicket("AAECAwQFBgcI."), (e: unknown) => e instanceof LinkError && e.kind === "secret");
  assert.throws(() => parseTicket("AAECAwQFBgc.AAECAwQFBgcICQoLDA0ODw"), (e: unknown) => e instanceof LinkError && e.kind === "id");
  assert.throws(() => parseTicket("AAECAwQFBgcI.AAECAwQFBgcICQoLDA0ODx"), (e: unknown) => e instanceof LinkError && e.kind === "secret");
});

const good = () => ({
  t: "manifest",
  version: 1,
  chunkSize: 65472,
  totalSize: 3,
  files: [
    { path: "photos/a.jpg", size: 1, mtime: 1767225600000 },
    { path: "b.txt", size: 2 },
  ],
});

test("manifest validation accepts the documented example", () => {
  const m = checkManifest(good());
  assert.equal(m.files.length, 2);
  assert.ok(sameManifest(m, checkManifest(good())));
});

test("manifest validation refuses unsafe or inconsistent offers", () => {
  const cases: [string, (m: any) => void][] = [
    ["absolute", (m) => (m.files[0].path = "/etc/passwd")],
    ["dot-dot", (m) => (m.files[0].path = "a/../../b")],
    ["empty element", (m) => (m.files[0].path = "a//b")],
    ["backslash", (m) => (m.files[0].path = "a\\b")],
    ["control", (m) => (m.files[0].path = "a\u0001b")],
    ["drive", (m) => (m.files[0].path = "C:evil")],
    ["device", (m) => (m.files[0].path = "dir/CON.txt")],
    ["long element", (m) => (m.files[0].path = "x".repeat(256))],
    ["duplicate", (m) => (m.files[1].path = "PHOTOS/A.JPG")],
    ["file and folder", (m) => (m.files[1].path = "photos")],
    ["total", (m) => (m.totalSize = 4)],
    ["negative size", (m) => (m.files[0].size = -1)],
    ["fractional size", (m) => (m.files[0].size = 0.5)],
    ["version", (m) => (m.version = 2)],
    ["chunk size", (m) => (m.chunkSize = 100)],
    ["no files", (m) => (m.files = [])],
    ["path type", (m) => (m.files[0].path = 7)],
  ];
  for (const [name, mutate] of cases) {
    const m = good();
    mutate(m);
    assert.throws(() => checkManifest(m), Error, name);
  }
  assert.equal(pathProblem("ok/name.txt"), "");
});

test("chunk arithmetic", () => {
  assert.equal(chunkCount(0, 1024), 0);
  assert.equal(chunkCount(1024, 1024), 1);
  assert.equal(chunkCount(1025, 1024), 2);
  assert.equal(chunkLen(1025, 1024, 1), 1);
});

test("accept validation", () => {
  const m = checkManifest({ ...good(), totalSize: 200000, files: [{ path: "a", size: 200000 }] });
  assert.deepEqual(checkAccept({ t: "accept", window: 8, resume: [{ file: 0, have: [[0, 2]] }] }, m).resume, [{ file: 0, have: [[0, 2]] }]);
  for (const bad of [
    { window: 0 },
    { window: 65537 },
    { window: 8, resume: [{ file: 1, have: [] }] },
    { window: 8, resume: [{ file: 0, have: [[2, 2]] }] },
    { window: 8, resume: [{ file: 0, have: [[0, 5]] }] },
  ]) {
    assert.throws(() => checkAccept({ t: "accept", ...bad }, m), Error, JSON.stringify(bad));
  }
});

test("frame decoding refuses malformed frames", () => {
  assert.throws(() => parseChunkHeader(new Uint8Array(41)), FrameError);
  const c = encodeChunk(0, 1, 2, new Uint8Array(32), new Uint8Array(3));
  c[1] = 2;
  assert.throws(() => parseChunkHeader(c), FrameError, "unknown flags");
  assert.throws(() => parseAck(new Uint8Array(12)), FrameError);
  assert.throws(() => parseNack(new Uint8Array(10)), FrameError);
  assert.throws(() => parseControl(new Uint8Array([1, 0x7b])), FrameError);
  assert.throws(() => parseControl(new Uint8Array([1, 0x5b, 0x5d])), FrameError, "not an object");
  assert.throws(() => parseControl(new TextEncoder().encode("\u0001{\"x\":1}")), FrameError, "no type");
});

test("every close code has a message", () => {
  for (let code = 4000; code <= 4014; code++) assert.notEqual(closeMessage(code), closeMessage(1006), String(code));
});

test("a 4009 close says which policy refused", () => {
  const signIn = closeMessage(4009, forbidden.signIn);
  const network = closeMessage(4009, forbidden.network);
  assert.match(signIn, /signed-in/);
  assert.doesNotMatch(signIn, /network/);
  assert.match(network, /from your network/);
  assert.doesNotMatch(network, /sign/i);
  // A server that gives no reason: both are possible.
  assert.match(closeMessage(4009), /network.*sign-in/);
});

test("names are shown escaped when they hold what could disguise them", () => {
  assert.equal(showName("photos/Ünïcödé 日本.jpg"), "photos/Ünïcödé 日本.jpg");
  assert.equal(showName("family 👨\u200d👩\u200d👧.png"), "family 👨\u200d👩\u200d👧.png");
  assert.equal(showName("invoice\u202efdp.exe"), '"invoice\\u{202e}fdp.exe"');
  assert.equal(showName('a\x1b"b\u200b'), '"a\\u{1b}\\"b\\u{200b}"');
  assert.equal(showName("tag\u{e0041}"), '"tag\\u{e0041}"');
  // A refused name in the manifest error is escaped too.
  const m = { t: "manifest", version: 1, chunkSize: 65536, totalSize: 1, files: [{ path: "invoice\u202efdp.exe", size: 1 }] };
  assert.throws(() => checkManifest(m), (e: Error) => !e.message.includes("\u202e") && e.message.includes("\\u{202e}"));
});
