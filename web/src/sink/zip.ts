// ZipStream runs in the transfer worker and turns verified chunks of
// several files into one streamed .zip download (client-zip: STORE, no
// compression, zip64 when an entry or the archive passes 4 GiB), for
// browsers that cannot write a folder. The archive goes through the
// service worker like any streaming download (src/sw.ts), with the same
// per-chunk acknowledgement as backpressure.
//
// A zip is strictly sequential: file i's entry must end before file i+1's
// begins, and chunks within an entry go in index order. So every verified
// chunk waits in its entry's pending map until it is next; only then is it
// handed to the archive and reported committed (which returns credit to
// the sender). Pending chunks are verified data in memory, bounded by the
// receiver's window. When the connection is lost, drop() forgets them, so
// the new connection's resume ranges name only committed chunks and the
// sender sends the rest again: nothing is written twice, nothing
// unverified is written, and the stream never has to rewind.
//
// The archive's central directory (its last bytes) is written only after
// every file's root has been verified, so the download never completes
// with a file whose root check failed: a failure aborts the download.
import { makeZip, predictLength } from "client-zip";
import type { Writer } from "./writers";

export interface ZipEntryInfo {
  path: string;
  size: number;
  mtime?: number;
}

type Commit = (file: number, indices: number[], bytes: number) => void;

// maxUnacked bounds the archive bytes posted to the service worker that
// the download has not consumed yet.
const maxUnacked = 8 << 20;

interface Entry {
  n: number; // chunks
  next: number; // the next chunk index the archive takes
  pending: Map<number, Uint8Array>; // verified, not yet in the archive
  wake: (() => void) | null;
}

// zipLength is the exact size of the archive ZipStream produces for
// files, for the download's Content-Length.
export function zipLength(files: ZipEntryInfo[]): number {
  return Number(predictLength(files.map((f) => ({ name: f.path, size: f.size }))));
}

export class ZipStream {
  private entries: Entry[];
  private verified: boolean[];
  private allVerified: Promise<void>;
  private resolveAll!: () => void;
  private failed: Error | null = null;
  private unacked = 0;
  private acked: (() => void) | null = null;
  private reader: ReadableStreamDefaultReader<Uint8Array> | null = null;

  constructor(
    private port: MessagePort,
    private files: ZipEntryInfo[],
    chunkSize: number,
    private commit: Commit,
    private onError: (message: string) => void,
  ) {
    this.entries = files.map((f) => ({ n: Math.ceil(f.size / chunkSize), next: 0, pending: new Map(), wake: null }));
    this.verified = files.map(() => false);
    this.allVerified = new Promise((r) => (this.resolveAll = r));
    if (files.length === 0) this.resolveAll();
    port.onmessage = (e: MessageEvent<{ t: string; bytes?: number }>) => {
      if (e.data.t === "ack") {
        this.unacked -= e.data.bytes ?? 0;
        this.wakeAcked();
      } else if (e.data.t === "canceled") {
        this.fail(new Error("The download was canceled in the browser."));
      }
    };
  }

  // start begins producing the archive; it ends when every file is in it
  // and verified, or when the stream fails.
  start(): void {
    const stream = makeZip(this.inputs(), { buffersAreUTF8: true });
    this.reader = stream.getReader();
    void this.pump(this.reader);
  }

  private async *inputs() {
    for (let i = 0; i < this.files.length; i++) {
      const f = this.files[i]!;
      yield { name: f.path, size: f.size, lastModified: new Date(f.mtime ?? Date.now()), input: this.entryStream(i) };
    }
    // Hold the central directory back until every root checked out.
    await this.allVerified;
    if (this.failed) throw this.failed;
  }

  private entryStream(i: number): ReadableStream<Uint8Array> {
    const e = this.entries[i]!;
    return new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          if (e.n === 0) c.close();
        },
        pull: async (c) => {
          while (!e.pending.has(e.next)) {
            if (this.failed) throw this.failed;
            await new Promise<void>((r) => (e.wake = r));
          }
          if (this.failed) throw this.failed;
          const d = e.pending.get(e.next)!;
          e.pending.delete(e.next);
          const index = e.next++;
          this.commit(i, [index], d.length);
          c.enqueue(d);
          if (e.next === e.n) c.close();
        },
      },
      { highWaterMark: 0 },
    );
  }

  private async pump(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    try {
      for (;;) {
        while (this.unacked > maxUnacked && !this.failed) await new Promise<void>((r) => (this.acked = r));
        if (this.failed) return;
        const { value, done } = await reader.read();
        if (done) break;
        if (this.failed) return;
        this.unacked += value.length;
        // Chunk data is handed over without a copy; client-zip's own small
        // header buffers are copied (they may be referenced again).
        if (value.byteLength >= 4096) {
          this.port.postMessage({ t: "data", buf: value.buffer, off: value.byteOffset, len: value.byteLength }, [value.buffer as ArrayBuffer]);
        } else {
          const copy = value.slice();
          this.port.postMessage({ t: "data", buf: copy.buffer, off: 0, len: copy.byteLength }, [copy.buffer]);
        }
      }
      this.port.postMessage({ t: "end" });
    } catch (e) {
      if (!this.failed) this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private wakeAcked(): void {
    const a = this.acked;
    this.acked = null;
    a?.();
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.port.postMessage({ t: "abort" });
    for (const en of this.entries) {
      en.pending.clear();
      const w = en.wake;
      en.wake = null;
      w?.();
    }
    this.wakeAcked();
    this.resolveAll();
    void this.reader?.cancel(e).catch(() => {});
    if (e.message !== "aborted") this.onError(e.message);
  }

  // writer is file i's view of the archive.
  writer(i: number): Writer {
    const e = this.entries[i]!;
    return {
      write: async (index, data) => {
        if (this.failed) throw this.failed;
        if (index < e.next || e.pending.has(index)) throw new Error(`zip: chunk ${i}/${index} twice`);
        e.pending.set(index, data);
        if (index === e.next) {
          const w = e.wake;
          e.wake = null;
          w?.();
        }
      },
      flush: async () => {
        if (this.failed) throw this.failed;
      },
      // close: the file's root was verified.
      close: async () => {
        if (!this.verified[i]) {
          this.verified[i] = true;
          if (this.verified.every(Boolean)) this.resolveAll();
        }
        return undefined;
      },
      abort: async () => this.fail(new Error("aborted")),
      drop: () => {
        const out = [...e.pending.keys()];
        e.pending.clear();
        return out;
      },
    };
  }
}
