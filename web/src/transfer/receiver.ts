// Receiver runs the receiving side of the transfer protocol (PROTOCOL.md
// §4): every chunk is checked against its BLAKE3 hash in the worker before
// it is written; bad copies are re-requested; each file's root is checked
// before the file is kept. State outlives connections, so a new generation
// resumes from the chunks already committed.
import { chunkCount, chunkLen, checkManifest, maxWindow, sameManifest, type Manifest, type Range } from "../protocol/control";
import { chunkHeaderLen, encodeAck, encodeControl, encodeNack, frameChunk, frameControl, parseChunkHeader, parseControl } from "../protocol/frames";
import { Inbox } from "../net/inbox";
import type { Generation } from "../net/generation";
import { ConnLost, FerryError, canceledByPeer, peerError, protocolError } from "../protocol/errors";
import { TooLarge } from "./errors";
import type { Progress } from "./progress";
import type { SinkSpec, FromWorker } from "./worker_api";
import type { WorkerClient } from "./worker_client";
import { ChunkSet } from "./chunks";
import { ackBatches, inFlightBytes, maxBadCopies, minWindow, receiverIdleMs } from "../protocol/constants_gen";

// Test hook (end-to-end tests): holdNack swallows the next NACK once;
// idleMs replaces idleMs below.
interface TestHooks {
  holdNack?: boolean;
  idleMs?: number;
}

// idleMs is how long the receiver waits for the sender's next message
// before it gives up (PROTOCOL.md §4.5): a sender that keeps the
// connection open but sends nothing (one that said done before its last
// chunks) would otherwise keep the page waiting for ever. Only time spent
// waiting for the sender counts: not the person choosing where to save,
// not chunks still being written here.
const idleMs = receiverIdleMs;

// Sink is where the person chose to save; beforeFile prepares what a file
// needs before its first chunk (a download, for the streaming sink).
export interface Sink {
  spec: SinkSpec;
  beforeFile(file: number): void;
  finished(file: number, blob?: Blob): void;
}

interface RFile {
  n: number;
  size: number;
  // Bookkeeping follows what arrived, never the chunk count the offer
  // claims (PROTOCOL.md §4.1): n may be 2^32 - 1.
  have: ChunkSet; // committed
  atWorker: Set<number>; // sent to the worker, not committed yet
  root: string;
  finishing: boolean;
  done: boolean;
  started: boolean;
  bad: Map<number, number>;
}

type Ev =
  | { kind: "dc"; b: Uint8Array }
  | { kind: "committed"; file: number; n: number; bytes: number }
  | { kind: "bad"; file: number; index: number }
  | { kind: "finished"; file: number; ok: boolean }
  | { kind: "io"; message: string };

export class Receiver {
  man: Manifest | null = null;
  private files: RFile[] = [];
  private sink: Sink | null = null;
  private events: Inbox<Ev> | null = null;
  private ready: ((err?: string) => void) | null = null;
  doneBytes = 0;
  complete = false;
  private fileDone = new Float64Array(0);
  private roots: string[] = [];
  stats: Record<string, number> = {};
  // arrivals times the chunks as they arrive (performance.now()): the
  // first's, the last's, and the payload bytes after the first, which is
  // how the bench times a plain data channel (internal/netlab).
  arrivals = { first: 0, last: 0, after: 0 };
  refetched = 0; // chunks that failed verification and were asked for again
  dropped = 0; // verified chunks a sequential sink let go at a reconnection
  held = 0; // NACKs held back by the test hook

  constructor(
    private worker: WorkerClient,
    // decide shows the manifest; it returns the chosen sink, or null to decline.
    private decide: (m: Manifest) => Promise<Sink | null>,
    private maxBytes = 0,
  ) {
    worker.onEvent = (m) => this.onWorker(m);
  }

  get filesDone(): number {
    return this.files.filter((f) => f.done).length;
  }

  // live is set once this connection's accept is sent: chunks from an
  // earlier connection that settle before it are in the resume ranges and
  // earn the sender no credit here.
  private live = false;

  private onWorker(m: FromWorker): void {
    const push = (e: Ev) => {
      if (this.live || e.kind === "finished" || e.kind === "io") this.events?.push(e);
    };
    switch (m.t) {
      case "rx-ready":
        this.ready?.(m.error);
        return;
      case "committed": {
        const f = this.files[m.file]!;
        for (const i of m.indices) {
          f.atWorker.delete(i);
          f.have.add(i);
        }
        this.doneBytes += m.bytes;
        this.fileDone[m.file] += m.bytes;
        push({ kind: "committed", file: m.file, n: m.indices.length, bytes: m.bytes });
        return;
      }
      case "bad":
        this.files[m.file]!.atWorker.delete(m.index);
        push({ kind: "bad", file: m.file, index: m.index });
        return;
      case "finished": {
        const f = this.files[m.file]!;
        f.finishing = false;
        if (m.ok) {
          f.done = true;
          this.roots[m.file] = m.root;
          this.sink?.finished(m.file, m.blob);
        }
        push({ kind: "finished", file: m.file, ok: m.ok });
        return;
      }
      case "rx-error":
        console.error("ferry: worker:", m.message);
        push({ kind: "io", message: m.message });
        return;
    }
  }

  // resumeRanges lists the committed chunks per file (accept.resume).
  private resumeRanges(): { file: number; have: Range[] }[] {
    const out: { file: number; have: Range[] }[] = [];
    this.files.forEach((f, i) => {
      if (f.have.size > 0) out.push({ file: i, have: f.have.ranges() });
    });
    return out;
  }

  // run receives on one open data channel until every file is verified.
  async run(g: Generation, dc: RTCDataChannel, progress: (p: Progress) => void): Promise<void> {
    const ev = new Inbox<Ev>();
    this.events = ev;
    g.consume((b) => ev.push({ kind: "dc", b: new Uint8Array(b) }));
    void g.dead.then((e) => ev.fail(e));
    const idle = (globalThis as { ferryTest?: TestHooks }).ferryTest?.idleMs ?? idleMs;
    const watch = setInterval(() => {
      const since = this.waitingSince;
      if (since === 0 || performance.now() - since < idle) return;
      // Our own side is busy: chunks being written, a file being closed.
      if (this.files.some((f) => (f.finishing && !f.done) || f.atWorker.size > 0)) return;
      ev.fail(new FerryError(`The sender stopped sending: nothing arrived for ${Math.round(idle / 1000)} seconds, so the transfer was stopped.`));
    }, Math.min(idle / 4, 5000));
    try {
      await this.serve(dc, ev, progress);
    } finally {
      clearInterval(watch);
      this.waitingSince = 0;
      if (this.events === ev) {
        this.events = null;
        this.live = false;
      }
    }
  }

  // waitingSince is when the receiver began waiting for its next event
  // (performance.now()), 0 while it is not waiting.
  private waitingSince = 0;

  private async next(ev: Inbox<Ev>): Promise<Ev> {
    this.waitingSince = performance.now();
    try {
      return await ev.next();
    } finally {
      this.waitingSince = 0;
    }
  }

  private async serve(dc: RTCDataChannel, ev: Inbox<Ev>, progress: (p: Progress) => void): Promise<void> {
    const send = (b: Uint8Array) => {
      try {
        dc.send(b as Uint8Array<ArrayBuffer>);
      } catch {
        throw new ConnLost("send failed");
      }
    };
    const fail = (code: string, err: FerryError): FerryError => {
      try {
        send(encodeControl({ t: "error", code }));
      } catch {
        /* gone anyway */
      }
      return err;
    };
    // The sender's first message on every connection is the manifest.
    let first: Ev;
    do first = await this.next(ev);
    while (first.kind !== "dc");
    if (first.b[0] !== frameControl) throw fail("protocol", protocolError("expected manifest"));
    const fm = parseControl(first.b);
    if (fm.t === "cancel") throw canceledByPeer();
    if (fm.t !== "manifest") throw fail("protocol", protocolError(`expected manifest, got ${fm.t}`));
    let man: Manifest;
    try {
      man = checkManifest(fm);
    } catch (e) {
      console.error("ferry: refused manifest:", e);
      throw fail("protocol", new FerryError(`The sender offered files this page refuses to save: ${(e as Error).message}.`));
    }
    if (!this.man) {
      if (this.maxBytes > 0 && man.totalSize > this.maxBytes) {
        send(encodeControl({ t: "decline", reason: "too large" }));
        throw new TooLarge(man.totalSize, this.maxBytes, true);
      }
      const sink = await this.decide(man);
      if (!sink) {
        send(encodeControl({ t: "decline", reason: "declined" }));
        throw new FerryError("You declined the files.", "canceled");
      }
      await this.open(man, sink);
    } else {
      if (!sameManifest(this.man, man)) throw fail("protocol", protocolError("the sender offered different files after reconnecting"));
      // Settle chunks still at the worker. A sequential sink (download,
      // zip) forgets verified chunks it was holding back for an earlier
      // one: they are asked for again rather than written out of turn.
      for (const d of await this.worker.sync()) {
        const f = this.files[d.file]!;
        for (const i of d.indices) f.atWorker.delete(i);
        this.dropped += d.indices.length;
      }
    }
    const window = Math.min(maxWindow, Math.max(minWindow, Math.floor(inFlightBytes / man.chunkSize)));
    const batch = Math.max(1, Math.floor(window / ackBatches));
    const resume = this.resumeRanges();
    send(encodeControl({ t: "accept", window, ...(resume.length > 0 ? { resume } : {}) }));
    this.live = true;

    let owed = 0;
    let connBytes = 0;
    let doneReceived = false;
    let lastReport = 0;
    const report = (force = false) => {
      const now = performance.now();
      if (!force && now - lastReport < 100) return;
      lastReport = now;
      progress({
        total: man.totalSize,
        done: this.doneBytes,
        files: man.files.length,
        filesDone: this.filesDone,
        fileDone: this.fileDone,
        roots: this.roots,
      });
    };
    const ack = () => {
      if (owed > 0) send(encodeAck({ credit: owed, committed: connBytes }));
      owed = 0;
    };
    const maybeFinish = (i: number) => {
      const f = this.files[i]!;
      if (f.root && f.have.size === f.n && !f.finishing && !f.done) {
        this.start(i);
        f.finishing = true;
        this.worker.post({ t: "finish", file: i, root: f.root });
      }
    };
    report(true);
    // Files completed on an earlier connection whose eof came then.
    this.files.forEach((_, i) => maybeFinish(i));

    for (;;) {
      this.stats = { owed, connBytes, doneBytes: this.doneBytes, committed: this.files.reduce((a, f) => a + f.have.size, 0), atWorker: this.files.reduce((a, f) => a + f.atWorker.size, 0) };
      const e = await this.next(ev);
      switch (e.kind) {
        case "committed":
          owed += e.n;
          connBytes += e.bytes;
          if (owed >= batch) ack();
          maybeFinish(e.file);
          report();
          break;
        case "bad": {
          const f = this.files[e.file]!;
          const n = (f.bad.get(e.index) ?? 0) + 1;
          f.bad.set(e.index, n);
          console.warn(`ferry: chunk ${e.file}/${e.index} failed verification (copy ${n}); asking again`);
          if (n >= maxBadCopies) throw fail("protocol", new FerryError("The data kept arriving damaged, so the transfer was stopped. Try again, perhaps on another network."));
          const hooks = (globalThis as { ferryTest?: TestHooks }).ferryTest;
          if (hooks?.holdNack) {
            // Test hook: never ask for this copy again on this connection,
            // so later chunks pile up behind the gap.
            hooks.holdNack = false;
            this.held++;
            break;
          }
          send(encodeNack({ file: e.file, index: e.index }));
          this.refetched++;
          break;
        }
        case "finished":
          if (!e.ok) throw fail("root_mismatch", new FerryError("Verification failed: the received file does not match what was sent. It was not kept; try again."));
          ack();
          send(encodeControl({ t: "verified", file: e.file }));
          report(true);
          break;
        case "io":
          throw fail("io", new FerryError("Saving the files failed (is the disk full, or was the folder removed?). The transfer was stopped."));
        case "dc":
          if (e.b[0] === frameChunk) {
            this.chunk(e.b, man, fail);
            break;
          }
          if (e.b[0] !== frameControl) throw fail("protocol", protocolError(`unexpected frame ${e.b[0]}`));
          {
            const m = parseControl(e.b);
            switch (m.t) {
              case "eof": {
                const f = this.files[m.file as number];
                if (!f || typeof m.root !== "string" || !/^[0-9a-f]{64}$/.test(m.root)) throw fail("protocol", protocolError("bad eof"));
                if (f.done) {
                  send(encodeControl({ t: "verified", file: m.file as number }));
                  break;
                }
                f.root = m.root;
                maybeFinish(m.file as number);
                break;
              }
              case "done":
                doneReceived = true;
                break;
              case "cancel":
                throw canceledByPeer();
              case "error":
                throw peerError(m.code);
              default:
                throw fail("protocol", protocolError(`unexpected ${m.t}`));
            }
          }
          break;
      }
      // "done" only says every eof was sent: re-requested chunks may still
      // be on their way, so completion waits for every file's verification.
      if (doneReceived && this.files.every((f) => f.done)) {
        ack();
        this.complete = true;
        report(true);
        send(encodeControl({ t: "complete" }));
        return;
      }
    }
  }

  private chunk(b: Uint8Array, man: Manifest, fail: (code: string, err: FerryError) => FerryError): void {
    const h = parseChunkHeader(b);
    const f = this.files[h.file];
    if (!f || h.index >= f.n || b.length - chunkHeaderLen !== chunkLen(f.size, man.chunkSize, h.index)) {
      throw fail("protocol", protocolError(`chunk ${h.file}/${h.index} out of range or wrong length`));
    }
    if (f.have.has(h.index) || f.atWorker.has(h.index)) throw fail("protocol", protocolError(`duplicate chunk ${h.file}/${h.index}`));
    f.atWorker.add(h.index);
    const now = performance.now();
    if (this.arrivals.first === 0) this.arrivals.first = now;
    else this.arrivals.after += b.length - chunkHeaderLen;
    this.arrivals.last = now;
    this.start(h.file);
    const buf = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? (b.buffer as ArrayBuffer) : (b.slice().buffer as ArrayBuffer);
    this.worker.post({ t: "chunk", file: h.file, index: h.index, frame: buf }, [buf]);
  }

  private start(i: number): void {
    const f = this.files[i]!;
    if (!f.started) {
      f.started = true;
      this.sink!.beforeFile(i);
    }
  }

  private async open(man: Manifest, sink: Sink): Promise<void> {
    const err = await new Promise<string | undefined>((resolve) => {
      this.ready = resolve;
      this.worker.post({ t: "rx-open", chunkSize: man.chunkSize, files: man.files.map((f) => ({ path: f.path, size: f.size, mtime: f.mtime })), sink: sink.spec });
    });
    this.ready = null;
    if (err) throw new FerryError(err.includes("already exists") ? err : "The files could not be created where you chose. Try another place.");
    this.man = man;
    this.sink = sink;
    this.fileDone = new Float64Array(man.files.length);
    this.roots = man.files.map(() => "");
    this.files = man.files.map((f) => {
      const n = chunkCount(f.size, man.chunkSize);
      return { n, size: f.size, have: new ChunkSet(), atWorker: new Set<number>(), root: "", finishing: false, done: false, started: false, bad: new Map() };
    });
  }

  // abort discards partial files (cancel, fatal error).
  abort(): void {
    this.worker.post({ t: "abort" });
  }
}
