// Writers run in the transfer worker and put verified chunks where the
// person chose: a file or folder picked with the File System Access API, a
// streaming download through the service worker, or memory. Each reports
// chunks as committed only once they are written (or handed to the
// download), so the credit the receiver returns is real backpressure.
import type { SinkSpec } from "../transfer/worker_api";

export interface Writer {
  write(index: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<Blob | undefined>;
  abort(): Promise<void>;
  // drop forgets verified chunks a sequential writer holds back (waiting
  // for an earlier chunk) and returns their indices: after a lost
  // connection they are asked for again instead of being written later.
  drop?(): number[];
}

type Commit = (indices: number[], bytes: number) => void;

const runBytes = 1 << 20; // coalesce small chunk writes into ~1 MiB writes
const maxPendingBytes = 8 << 20;

export async function openWriter(
  sink: SinkSpec,
  path: string,
  size: number,
  chunkSize: number,
  port: MessagePort | null,
  commit: Commit,
): Promise<Writer> {
  switch (sink.kind) {
    case "fsa-file":
      return new FileWriter(await sink.handle.createWritable({ keepExistingData: false }), chunkSize, commit);
    case "fsa-dir":
      return new FileWriter(await createIn(sink.dir, path), chunkSize, commit);
    case "stream":
      if (!port) throw new Error("no download stream for this file");
      return new StreamWriter(port, size, chunkSize, commit);
    case "memory":
      return new MemoryWriter(commit);
    case "zip":
      throw new Error("zip entries come from the ZipStream");
  }
}

// createIn creates path (relative, already validated) inside dir, refusing
// to overwrite anything that is there.
async function createIn(dir: FileSystemDirectoryHandle, path: string): Promise<FileSystemWritableFileStream> {
  const parts = path.split("/");
  const name = parts.pop()!;
  for (const p of parts) dir = await dir.getDirectoryHandle(p, { create: true });
  let exists = true;
  try {
    await dir.getFileHandle(name);
  } catch {
    exists = false;
  }
  if (!exists) {
    try {
      await dir.getDirectoryHandle(name);
      exists = true;
    } catch {
      /* not a folder either */
    }
  }
  if (exists) throw new Error(`“${path}” already exists in the folder you chose. Choose an empty folder.`);
  const fh = await dir.getFileHandle(name, { create: true });
  return fh.createWritable({ keepExistingData: false });
}

// FileWriter writes at positions, so chunks may arrive in any order. The
// browser keeps the data in a swap file until close(): an unfinished file
// never appears under its real name.
class FileWriter implements Writer {
  private run: { start: number; parts: Uint8Array[]; bytes: number } | null = null;
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private err: unknown = null;

  constructor(
    private ws: FileSystemWritableFileStream,
    private chunkSize: number,
    private commit: Commit,
  ) {}

  async write(index: number, data: Uint8Array): Promise<void> {
    if (this.err) throw this.err;
    const r = this.run;
    if (r && r.start + r.parts.length === index && r.bytes + data.length <= runBytes) {
      r.parts.push(data);
      r.bytes += data.length;
    } else {
      this.startRun();
      this.run = { start: index, parts: [data], bytes: data.length };
    }
    if (this.run!.bytes >= runBytes) this.startRun();
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.startRun(), 2);
    if (this.pending > maxPendingBytes) await this.chain;
  }

  private startRun(): void {
    const r = this.run;
    this.run = null;
    if (!r) return;
    this.pending += r.bytes;
    const data = new Uint8Array(r.bytes);
    let o = 0;
    for (const p of r.parts) {
      data.set(p, o);
      o += p.length;
    }
    const indices = r.parts.map((_, i) => r.start + i);
    this.chain = this.chain.then(async () => {
      if (this.err) return;
      try {
        await this.ws.write({ type: "write", position: r.start * this.chunkSize, data });
        this.pending -= r.bytes;
        this.commit(indices, r.bytes);
      } catch (e) {
        this.err = e;
      }
    });
  }

  async flush(): Promise<void> {
    this.startRun();
    await this.chain;
    if (this.err) throw this.err;
  }

  async close(): Promise<undefined> {
    await this.flush();
    await this.ws.close();
    return undefined;
  }

  async abort(): Promise<void> {
    this.run = null;
    await this.chain;
    try {
      await this.ws.abort();
    } catch {
      /* already closed */
    }
  }
}

// StreamWriter feeds a service-worker download, which is strictly
// sequential: chunks that arrive early (after a bad copy was re-requested)
// wait here until the gap is filled. The service worker acknowledges what
// the download consumed; at most maxPendingBytes are unacknowledged.
class StreamWriter implements Writer {
  private next = 0;
  private early = new Map<number, Uint8Array>();
  private unacked = 0;
  private acked: (() => void) | null = null;
  private failed = false;

  constructor(
    private port: MessagePort,
    size: number,
    _chunkSize: number,
    private commit: Commit,
  ) {
    void size;
    port.onmessage = (e: MessageEvent<{ t: string; bytes?: number }>) => {
      if (e.data.t === "ack") {
        this.unacked -= e.data.bytes ?? 0;
        const a = this.acked;
        this.acked = null;
        a?.();
      } else if (e.data.t === "canceled") {
        this.failed = true;
        this.acked?.();
      }
    };
  }

  async write(index: number, data: Uint8Array): Promise<void> {
    if (index !== this.next) {
      this.early.set(index, data);
      return;
    }
    let d: Uint8Array | undefined = data;
    while (d) {
      while (this.unacked > maxPendingBytes && !this.failed) await new Promise<void>((r) => (this.acked = r));
      if (this.failed) throw new Error("The download was canceled in the browser.");
      const len = d.length; // the view is detached once posted
      this.unacked += len;
      this.port.postMessage({ t: "data", buf: d.buffer, off: d.byteOffset, len }, [d.buffer as ArrayBuffer]);
      this.commit([this.next], len);
      this.next++;
      d = this.early.get(this.next);
      this.early.delete(this.next);
    }
  }

  async flush(): Promise<void> {}

  drop(): number[] {
    const out = [...this.early.keys()];
    this.early.clear();
    return out;
  }

  async close(): Promise<undefined> {
    this.port.postMessage({ t: "end" });
    return undefined;
  }

  async abort(): Promise<void> {
    this.port.postMessage({ t: "abort" });
  }
}

// MemoryWriter keeps chunks until the file is complete; the page caps the
// total size it accepts this way.
class MemoryWriter implements Writer {
  private parts: Uint8Array[] = [];

  constructor(private commit: Commit) {}

  async write(index: number, data: Uint8Array): Promise<void> {
    this.parts[index] = data;
    this.commit([index], data.length);
  }

  async flush(): Promise<void> {}

  async close(): Promise<Blob> {
    const b = new Blob(this.parts as BlobPart[], { type: "application/octet-stream" });
    this.parts = [];
    return b;
  }

  async abort(): Promise<void> {
    this.parts = [];
  }
}
