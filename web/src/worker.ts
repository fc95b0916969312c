// The transfer worker: reads and hashes chunks for the sender; verifies,
// orders and writes chunks for the receiver. One per page.
import { blake3, initBlake3, RootFolder } from "./crypto/blake3";
import { chunkHeaderLen, hashLen, writeChunkHeader } from "./protocol/frames";
import { chunkCount, chunkLen } from "./protocol/control";
import type { Dropped, FromWorker, ReadRequest, RxFileSpec, SinkSpec, ToWorker } from "./transfer/worker_api";
import { openWriter, type Writer } from "./sink/writers";
import { FileHashes } from "./transfer/chunks";
import { ZipStream } from "./sink/zip";

interface WorkerScope {
  postMessage(m: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
}
const scope = self as unknown as WorkerScope;
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

const ready = initBlake3();
// Messages are handled strictly in order, one at a time.
let queue: Promise<void> = Promise.resolve();
scope.onmessage = (e) => {
  queue = queue.then(() => handle(e.data)).catch((err) => {
    console.error("ferry worker:", err);
    post({ t: "rx-error", message: String(err) });
  });
};

// Sender state.
let txFiles: File[] = [];
let txChunkSize = 0;

// Receiver state.
interface RxFile {
  size: number;
  n: number;
  // hashes for the root, made when the file's first chunk arrives: the
  // worker holds nothing per offered chunk (PROTOCOL.md §4.1).
  hashes: FileHashes | null;
  writer: Writer | null;
}
let rx: { chunkSize: number; files: RxFile[]; sink: SinkSpec; zip: ZipStream | null } | null = null;
// Download ports of the streaming sink; the first may arrive before rx-open.
const ports = new Map<number, MessagePort>();

async function handle(m: ToWorker): Promise<void> {
  await ready;
  switch (m.t) {
    case "tx-open":
      txFiles = m.files;
      txChunkSize = m.chunkSize;
      return;
    case "read":
      return read(m);
    case "rx-open":
      return rxOpen(m.chunkSize, m.files, m.sink);
    case "rx-port":
      ports.set(m.file, m.port);
      return;
    case "chunk":
      return chunk(m.file, m.index, m.frame);
    case "finish":
      return finish(m.file, m.root);
    case "sync": {
      // Every chunk posted before this message has been handled (messages
      // run in order): written, held back by a sequential sink, or bad.
      const dropped: Dropped[] = [];
      (rx?.files ?? []).forEach((f, file) => {
        const indices = f.writer?.drop?.() ?? [];
        for (const i of indices) f.hashes?.drop(i);
        if (indices.length > 0) dropped.push({ file, indices });
      });
      await Promise.all((rx?.files ?? []).map((f) => f.writer?.flush()));
      post({ t: "sync", id: m.id, dropped });
      return;
    }
    case "abort":
      for (const f of rx?.files ?? []) await f.writer?.abort();
      return;
    case "bench":
      return bench(m.mib);
  }
}

async function read(r: ReadRequest): Promise<void> {
  const f = txFiles[r.file]!;
  const cs = txChunkSize;
  const from = r.start * cs;
  const to = Math.min(f.size, (r.start + r.count) * cs);
  let buf: Uint8Array;
  try {
    buf = new Uint8Array(await f.slice(from, to).arrayBuffer());
  } catch (e) {
    // Chromium throws NotReadableError when the file changed on disk.
    post({ t: "read-error", id: r.id, changed: e instanceof DOMException && e.name === "NotReadableError" });
    return;
  }
  if (buf.length !== to - from) {
    post({ t: "read-error", id: r.id, changed: true });
    return;
  }
  const hashes = new Uint8Array(r.count * hashLen);
  const frames: ArrayBuffer[] = [];
  for (let k = 0; k < r.count; k++) {
    const idx = r.start + k;
    const data = buf.subarray(k * cs, k * cs + chunkLen(f.size, cs, idx));
    const h = blake3(data);
    hashes.set(h, k * hashLen);
    if (!r.hashOnly) {
      const frame = new Uint8Array(chunkHeaderLen + data.length);
      writeChunkHeader(frame, 0, r.file, idx, h);
      frame.set(data, chunkHeaderLen);
      frames.push(frame.buffer);
    }
  }
  post({ t: "read", id: r.id, frames, hashes: hashes.buffer }, [...frames, hashes.buffer]);
}

async function rxOpen(chunkSize: number, files: RxFileSpec[], sink: SinkSpec): Promise<void> {
  rx = {
    chunkSize,
    sink,
    files: files.map((f) => ({ size: f.size, n: chunkCount(f.size, chunkSize), hashes: null, writer: null })),
    zip: null,
  };
  if (sink.kind === "zip") {
    const port = ports.get(0);
    if (!port) {
      post({ t: "rx-ready", error: "no download stream for the archive" });
      return;
    }
    rx.zip = new ZipStream(port, files, chunkSize, (file, indices, bytes) => committed(file, indices, bytes), (message) =>
      post({ t: "rx-error", message }),
    );
    rx.zip.start();
  }
  // Create the files up front so a name clash or a permission problem shows
  // before anything is accepted.
  if (sink.kind === "fsa-dir" || sink.kind === "fsa-file") {
    try {
      for (let i = 0; i < files.length; i++) rx.files[i]!.writer = await writerFor(i, files[i]!.path);
    } catch (e) {
      post({ t: "rx-ready", error: e instanceof Error ? e.message : String(e) });
      return;
    }
  }
  post({ t: "rx-ready" });
}

async function writerFor(i: number, path: string): Promise<Writer> {
  const r = rx!;
  const f = r.files[i]!;
  if (r.zip) return r.zip.writer(i);
  return openWriter(r.sink, path, f.size, r.chunkSize, ports.get(i) ?? null, (indices, bytes) => committed(i, indices, bytes));
}

// committed records that a sink made chunks durable: their hashes now
// count towards the file's root.
function committed(file: number, indices: number[], bytes: number): void {
  const f = rx!.files[file]!;
  for (const i of indices) f.hashes!.commit(i);
  post({ t: "committed", file, indices, bytes });
}

function hashesOf(f: RxFile): FileHashes {
  f.hashes ??= new FileHashes(f.n, new RootFolder(f.size, rx!.chunkSize));
  return f.hashes;
}

async function chunk(file: number, index: number, buf: ArrayBuffer): Promise<void> {
  const r = rx!;
  const f = r.files[file]!;
  const frame = new Uint8Array(buf);
  const data = frame.subarray(chunkHeaderLen);
  const want = frame.subarray(10, chunkHeaderLen);
  const got = blake3(data);
  for (let i = 0; i < hashLen; i++) {
    if (got[i] !== want[i]) {
      post({ t: "bad", file, index });
      return;
    }
  }
  hashesOf(f).verify(index, got);
  f.writer ??= await writerFor(file, "");
  await f.writer.write(index, data);
}

async function finish(file: number, root: string): Promise<void> {
  const r = rx!;
  const f = r.files[file]!;
  f.writer ??= await writerFor(file, "");
  await f.writer.flush();
  const got = hashesOf(f).root();
  if (got !== root) {
    await f.writer.abort();
    post({ t: "finished", file, ok: false, root: got });
    return;
  }
  const blob = await f.writer.close();
  post({ t: "finished", file, ok: true, root: got, ...(blob ? { blob } : {}) });
}

async function bench(mib: number): Promise<void> {
  const chunk = crypto.getRandomValues(new Uint8Array(65472));
  const n = Math.ceil((mib << 20) / chunk.length);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) blake3(chunk);
  const dt = (performance.now() - t0) / 1000;
  post({ t: "bench", mbps: (n * chunk.length) / 1e6 / dt });
}
