// The zip sink: verified chunks go into the archive in order whatever
// order they arrive in, chunks held back are let go by drop() (and never
// appear twice), the central directory waits for every file's root, and
// the archive has exactly the predicted length.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ZipStream, zipLength, type ZipEntryInfo } from "../src/sink/zip";

const chunkSize = 8;

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 255);
}

// collect reads what the ZipStream posts to the download's port,
// acknowledging as a service worker would.
function collect(port: MessagePort): { out: Uint8Array[]; ended: Promise<"end" | "abort"> } {
  const out: Uint8Array[] = [];
  const ended = new Promise<"end" | "abort">((resolve) => {
    port.onmessage = (e: MessageEvent<{ t: string; buf?: ArrayBuffer; off?: number; len?: number }>) => {
      const m = e.data;
      if (m.t === "data") {
        out.push(new Uint8Array(m.buf!, m.off, m.len).slice());
        port.postMessage({ t: "ack", bytes: m.len });
      } else if (m.t === "end" || m.t === "abort") {
        resolve(m.t);
      }
    };
  });
  return { out, ended };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all;
}

// entries walks the local headers of an archive whose entries are stored
// with data descriptors (sizes known from the manifest).
function entries(zip: Uint8Array, files: ZipEntryInfo[]): { name: string; data: Uint8Array; method: number }[] {
  const v = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const out = [];
  let o = 0;
  for (const f of files) {
    assert.equal(v.getUint32(o, true), 0x04034b50, `local header of ${f.path}`);
    const method = v.getUint16(o + 8, true);
    const nameLen = v.getUint16(o + 26, true);
    const extraLen = v.getUint16(o + 28, true);
    const name = new TextDecoder().decode(zip.subarray(o + 30, o + 30 + nameLen));
    o += 30 + nameLen + extraLen;
    out.push({ name, data: zip.subarray(o, o + f.size), method });
    o += f.size;
    assert.equal(v.getUint32(o, true), 0x08074b50, `data descriptor of ${f.path}`);
    o += 16;
  }
  assert.equal(v.getUint32(o, true), 0x02014b50, "central directory follows the last entry");
  assert.equal(v.getUint32(zip.length - 22, true), 0x06054b50, "end of central directory");
  return out;
}

test("zip stream: in order, held-back chunks dropped, exact length", async () => {
  const files: ZipEntryInfo[] = [
    { path: "set/a.bin", size: 20, mtime: Date.UTC(2025, 0, 2) },
    { path: "set/empty", size: 0 },
    { path: "set/ünï/b.bin", size: 17 },
  ];
  const data = files.map((f, i) => bytes(f.size, i));
  const chunk = (file: number, index: number) => data[file]!.slice(index * chunkSize, Math.min(files[file]!.size, (index + 1) * chunkSize));
  const { port1, port2 } = new MessageChannel();
  const { out, ended } = collect(port2);
  const commits: string[] = [];
  const errors: string[] = [];
  const z = new ZipStream(port1, files, chunkSize, (file, indices) => commits.push(`${file}/${indices.join(",")}`), (m) => errors.push(m));
  z.start();
  const [w0, w1, w2] = [z.writer(0), z.writer(1), z.writer(2)];

  // File 0: chunk 0 went bad and is missing; 1 and 2 wait behind it.
  await w0.write(1, chunk(0, 1));
  await w0.write(2, chunk(0, 2));
  // File 2's chunks arrive too (the sender moved on); they wait for file 0.
  await w2.write(0, chunk(2, 0));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(commits, [], "nothing committed while chunk 0 is missing");
  // The connection is lost: everything held back is let go.
  assert.deepEqual(w0.drop!().sort(), [1, 2]);
  assert.deepEqual(w2.drop!(), [0]);
  assert.deepEqual(w1.drop!(), []);
  // The new connection sends everything from the gap on, in order.
  for (let k = 0; k < 3; k++) await w0.write(k, chunk(0, k));
  for (let k = 0; k < 3; k++) await w2.write(k, chunk(2, k));
  await assert.rejects(w2.write(1, chunk(2, 1)), /twice/, "a committed chunk cannot come again");
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(commits, ["0/0", "0/1", "0/2", "2/0", "2/1", "2/2"]);
  // The archive ends only when every root was verified.
  let done = false;
  void ended.then(() => (done = true));
  await w0.close();
  await w2.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false, "no central directory before the last root");
  await w1.close();
  assert.equal(await ended, "end");
  assert.deepEqual(errors, []);

  const zip = concat(out);
  assert.equal(zip.length, zipLength(files), "the predicted Content-Length");
  const got = entries(zip, files);
  assert.deepEqual(got.map((e) => e.name), files.map((f) => f.path));
  got.forEach((e, i) => {
    assert.equal(e.method, 0, "stored");
    assert.deepEqual(e.data, data[i]);
  });
  port1.close();
  port2.close();
});

test("zip stream: abort fails the download", async () => {
  const files: ZipEntryInfo[] = [{ path: "x.bin", size: 9 }];
  const { port1, port2 } = new MessageChannel();
  const { ended } = collect(port2);
  const z = new ZipStream(port1, files, chunkSize, () => {}, () => {});
  z.start();
  const w = z.writer(0);
  await w.write(0, bytes(8, 1));
  await w.abort();
  assert.equal(await ended, "abort");
  await assert.rejects(w.write(1, bytes(1, 1)));
  port1.close();
  port2.close();
});

test("zip length: zip64 past 4 GiB", () => {
  const small = zipLength([{ path: "a", size: 1 }]);
  const big = zipLength([{ path: "a", size: 5 * 2 ** 30 }]);
  // Entries of 4 GiB and more carry zip64 fields (and the archive a zip64
  // end record), so the overhead grows.
  assert.ok(big - 5 * 2 ** 30 > small - 1 + 20, `overhead ${big - 5 * 2 ** 30} vs ${small - 1}`);
});
