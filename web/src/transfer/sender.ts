// Sender runs the sending side of the transfer protocol (PROTOCOL.md §4) on
// one data channel at a time; its state (chunk hashes, verified files)
// outlives connections, so a new generation continues where the last one
// stopped.
import { rootHex } from "../crypto/blake3";
import { chunkCount, checkAccept, protocolVersion, type Manifest } from "../protocol/control";
import { agent } from "../protocol/signal";
import {
  browserChunkSize, encodeControl, flagResend, frameAck, frameControl, frameNack, hashLen, parseAck, parseControl, parseNack,
} from "../protocol/frames";
import { Inbox } from "../net/inbox";
import type { Generation } from "../net/generation";
import { stripeCount } from "../net/stripes";
import { maxRelayStripes, maxStripes } from "../protocol/constants_gen";
import { ConnLost, FerryError, canceledByPeer, peerError, protocolError } from "../protocol/errors";
import type { Progress } from "./progress";
import { Waker } from "./waker";
import type { WorkerClient } from "./worker_client";

// Flow control on the browser side of the data channel: stop queueing at
// highWater, resume at lowWater (bufferedamountlow).
const highWater = 4 << 20;
const lowWater = 1 << 20;
const readAhead = 64; // chunks read and hashed ahead of sending
const runMax = 16; // chunks per worker read

export interface Source {
  file: File;
  path: string;
}

interface SFile {
  src: Source;
  n: number;
  hashes: Uint8Array;
  known: Uint8Array;
  verified: boolean;
}

type Item =
  | { kind: "chunk"; file: number; index: number; frame: ArrayBuffer; hash: Uint8Array }
  | { kind: "hash"; file: number; index: number; hash: Uint8Array }
  | { kind: "eof"; file: number }
  | { kind: "error"; changed: boolean }
  | { kind: "end" };

interface Run {
  file: number;
  start: number;
  count: number;
  hashOnly: boolean;
  eof: boolean; // the file's eof follows this run
}

// Test hook: chunks listed in window.ferryTest.corrupt get one byte flipped
// after hashing, the first time they are sent.
interface TestHooks {
  corrupt?: { file: number; index: number }[];
  // stripes, when set, replaces the path's stripe count (0: never stripe).
  stripes?: number;
}

export class Sender {
  readonly man: Manifest;
  private files: SFile[];
  sentBytes = 0;
  complete = false;
  // Per-file progress for the page: bytes the receiver committed (credit
  // returned for chunks sent first-time in order, so attributed in send
  // order) and the roots of files the receiver verified.
  private fileDone: Float64Array;
  private roots: string[];
  private computedRoots: string[];
  // stats is a snapshot for debugging (ferryDebug in the console).
  stats: Record<string, number | boolean> = {};
  // canStripe: the receiver announced striping (PROTOCOL.md §3.4).
  canStripe: () => boolean = () => false;
  // stripesUsed is the most connections one generation sent chunks over.
  stripesUsed = 0;

  constructor(
    sources: Source[],
    private worker: WorkerClient,
  ) {
    const cs = browserChunkSize;
    this.files = sources.map((src) => {
      const n = chunkCount(src.file.size, cs);
      return { src, n, hashes: new Uint8Array(n * hashLen), known: new Uint8Array(n), verified: false };
    });
    this.man = {
      t: "manifest",
      version: protocolVersion,
      agent,
      chunkSize: cs,
      totalSize: sources.reduce((a, s) => a + s.file.size, 0),
      files: sources.map((s) => ({ path: s.path, size: s.file.size, ...(s.file.lastModified ? { mtime: s.file.lastModified } : {}) })),
    };
    this.fileDone = new Float64Array(sources.length);
    this.roots = sources.map(() => "");
    this.computedRoots = sources.map(() => "");
    worker.post({ t: "tx-open", files: sources.map((s) => s.file), chunkSize: cs });
  }

  get verifiedFiles(): number {
    return this.files.filter((f) => f.verified).length;
  }

  // run sends on one open data channel until the receiver reports complete.
  // It throws ConnLost when the connection breaks, FerryError when the
  // transfer cannot go on.
  async run(g: Generation, dc: RTCDataChannel, progress: (p: Progress) => void): Promise<void> {
    const dead = g.dead;
    const inbox = new Inbox<Uint8Array>();
    const wake = new Waker();
    let lost: ConnLost | null = null;
    g.consume((b) => {
      inbox.push(new Uint8Array(b));
      wake.notify();
    });
    void dead.then((e) => {
      lost = e;
      inbox.fail(e);
      wake.notify();
    });
    dc.bufferedAmountLowThreshold = lowWater;
    dc.onbufferedamountlow = wake.notify;
    const sendOn = (ch: RTCDataChannel, b: Uint8Array | ArrayBuffer) => {
      if (lost) throw lost;
      try {
        ch.send(b as ArrayBuffer);
      } catch {
        throw new ConnLost("send failed");
      }
    };
    const send = (b: Uint8Array | ArrayBuffer) => sendOn(dc, b);
    // The channels CHUNK frames may go on: the main one and the open
    // stripes (PROTOCOL.md §3.4).
    const chans: RTCDataChannel[] = [dc];
    const used = new Set<RTCDataChannel>();
    const channels = (): RTCDataChannel[] => {
      for (let i = chans.length - 1; i < g.stripes.length; i++) {
        const ch = g.stripes[i]!;
        ch.bufferedAmountLowThreshold = lowWater;
        ch.onbufferedamountlow = wake.notify;
        chans.push(ch);
      }
      return chans;
    };
    const sendChunk = (ch: RTCDataChannel, b: ArrayBuffer) => {
      sendOn(ch, b);
      if (!used.has(ch)) {
        used.add(ch);
        this.stripesUsed = Math.max(this.stripesUsed, used.size);
      }
    };
    const fail = (code: string, err: FerryError): FerryError => {
      try {
        send(encodeControl({ t: "error", code }));
      } catch {
        /* the connection is gone anyway */
      }
      return err;
    };

    send(encodeControl(this.man));
    // Wait for the receiver's decision.
    let acc;
    for (;;) {
      const b = await inbox.next();
      if (b[0] !== frameControl) throw fail("protocol", protocolError("expected accept"));
      const m = parseControl(b);
      if (m.t === "accept") {
        try {
          acc = checkAccept(m, this.man);
        } catch (e) {
          throw fail("protocol", protocolError(String(e)));
        }
        break;
      }
      if (m.t === "decline") {
        throw new FerryError(
          m.reason === "too large"
            ? "The receiver's page refused the files: together they are larger than the server allows for one transfer."
            : "The receiver declined the files.",
          "canceled",
        );
      }
      if (m.t === "cancel") throw canceledByPeer();
      if (m.t === "error") throw peerError(m.code);
      throw fail("protocol", protocolError(`unexpected ${m.t} before accept`));
    }
    const have = this.files.map((f) => new Uint8Array(f.n));
    let resumed = 0;
    this.files.forEach((f, i) => (this.fileDone[i] = f.verified ? f.src.file.size : 0));
    for (const r of acc.resume ?? []) {
      for (const [a, b] of r.have) {
        for (let k = a; k < b; k++) {
          if (!have[r.file]![k]) {
            const len = Math.min(this.man.chunkSize, this.files[r.file]!.src.file.size - k * this.man.chunkSize);
            resumed += len;
            if (!this.files[r.file]!.verified) this.fileDone[r.file] += len;
          }
          have[r.file]![k] = 1;
        }
      }
    }
    // First-time sends of this connection, oldest first: each returned
    // credit stands for the oldest one (the receiver commits in order,
    // except for the odd re-requested chunk).
    const sentQ: { file: number; len: number }[] = [];
    let sentHead = 0;

    const runs = this.plan(have);
    const ready: Item[] = [];
    let inFlight = 0; // chunks requested from the worker, not yet taken
    let runIdx = 0;
    let endQueued = false;
    // Reads run in parallel in the worker but are queued in plan order.
    let tail: Promise<void> = Promise.resolve();
    const readMore = () => {
      while (runIdx < runs.length && inFlight < readAhead) {
        const r = runs[runIdx++]!;
        inFlight += r.count;
        const p = this.read(r);
        tail = tail.then(async () => {
          ready.push(...(await p));
          wake.notify();
        });
      }
      if (runIdx === runs.length && !endQueued) {
        endQueued = true;
        tail = tail.then(() => {
          ready.push({ kind: "end" });
          wake.notify();
        });
      }
    };
    readMore();

    let credit = acc.window;
    let committed = 0;
    let allSent = false;
    let doneSent = false;
    const resend: { file: number; index: number }[] = [];
    let lastReport = 0;
    const report = (force = false) => {
      const now = performance.now();
      if (!force && now - lastReport < 100) return;
      lastReport = now;
      progress({
        total: this.man.totalSize,
        done: Math.min(this.man.totalSize, resumed + committed),
        files: this.files.length,
        filesDone: this.verifiedFiles,
        fileDone: this.fileDone,
        roots: this.roots,
      });
    };
    report(true);
    const hooks = (globalThis as { ferryTest?: TestHooks }).ferryTest;
    // Stripe once the main connection works, if enough is left to send,
    // over as many connections as the path's RTT asks for (PROTOCOL.md §3.4).
    if (this.canStripe() && hooks?.stripes !== 0) {
      const left = this.man.totalSize - resumed - this.files.reduce((a, f) => a + (f.verified ? f.src.file.size : 0), 0);
      void g.sample().then((p) => {
        // A relayed generation's stripes go through the relay too, fewer
        // (net/generation.ts).
        const relay = p?.path !== "direct";
        const n = Math.min(hooks?.stripes ?? stripeCount(p?.rttMs ?? 0, left), relay ? maxRelayStripes : maxStripes);
        console.debug(`ferry: gen ${g.gen}: rtt ${p?.rttMs ?? "?"} ms, ${left} bytes left, ${p?.path ?? "?"}: ${n} connection(s)`);
        if (n > 1 && !lost && p) g.stripe(n, relay);
      });
    }

    for (;;) {
      if (lost) throw lost;
      for (let b = inbox.shift(); b !== undefined; b = inbox.shift()) {
        switch (b[0]) {
          case frameAck: {
            const a = parseAck(b);
            credit += a.credit;
            committed = a.committed;
            for (let k = 0; k < a.credit && sentHead < sentQ.length; k++) {
              const s = sentQ[sentHead++]!;
              if (!this.files[s.file]!.verified) this.fileDone[s.file] = Math.min(this.files[s.file]!.src.file.size, this.fileDone[s.file] + s.len);
            }
            if (sentHead > 4096 && sentHead * 2 > sentQ.length) {
              sentQ.splice(0, sentHead);
              sentHead = 0;
            }
            report();
            break;
          }
          case frameNack: {
            const n = parseNack(b);
            const f = this.files[n.file];
            if (!f || n.index >= f.n || !f.known[n.index]) throw fail("protocol", protocolError("nack for a chunk never sent"));
            resend.push(n);
            break;
          }
          case frameControl: {
            const m = parseControl(b);
            if (m.t === "verified") {
              const f = this.files[m.file as number];
              if (!f) throw fail("protocol", protocolError("verified for unknown file"));
              f.verified = true;
              this.fileDone[m.file as number] = f.src.file.size;
              this.roots[m.file as number] = this.computedRoots[m.file as number]!;
              report(true);
            } else if (m.t === "complete") {
              this.complete = true;
              this.files.forEach((f, i) => (this.fileDone[i] = f.src.file.size));
              progress({
                total: this.man.totalSize,
                done: this.man.totalSize,
                files: this.files.length,
                filesDone: this.files.length,
                fileDone: this.fileDone,
                roots: this.roots,
              });
              return;
            } else if (m.t === "cancel") {
              throw canceledByPeer();
            } else if (m.t === "error") {
              throw peerError(m.code);
            } else {
              throw fail("protocol", protocolError(`unexpected ${m.t}`));
            }
            break;
          }
          default:
            throw fail("protocol", protocolError(`unexpected frame ${b[0]}`));
        }
      }
      const roomy = dc.bufferedAmount < highWater;
      const cs = channels();
      const ci = pickChannel(cs, highWater);
      this.stats = { credit, ready: ready.length, inFlight, buffered: dc.bufferedAmount, allSent, resend: resend.length, runIdx, runs: runs.length, channels: cs.length, used: used.size };
      if (resend.length > 0 && ci >= 0) {
        const n = resend.shift()!;
        const [it] = await this.read({ file: n.file, start: n.index, count: 1, hashOnly: false, eof: false });
        if (it?.kind !== "chunk") throw fail("file_changed", fileChanged());
        if (!sameHash(this.files[n.file]!.hashes, n.index, it.hash)) throw fail("file_changed", fileChanged());
        new Uint8Array(it.frame)[1] = flagResend;
        sendChunk(cs[ci]!, it.frame);
        this.sentBytes += it.frame.byteLength - 42;
        continue;
      }
      if (!allSent && ready.length > 0 && (ready[0]!.kind === "chunk" ? credit > 0 && ci >= 0 : roomy)) {
        const it = ready.shift()!;
        switch (it.kind) {
          case "chunk": {
            inFlight--;
            readMore();
            const f = this.files[it.file]!;
            if (f.known[it.index] && !sameHash(f.hashes, it.index, it.hash)) throw fail("file_changed", fileChanged());
            f.hashes.set(it.hash, it.index * hashLen);
            f.known[it.index] = 1;
            const c = hooks?.corrupt?.findIndex((x) => x.file === it.file && x.index === it.index) ?? -1;
            if (c >= 0) {
              hooks!.corrupt!.splice(c, 1);
              const fr = new Uint8Array(it.frame);
              fr[fr.length - 1]! ^= 0xff;
            }
            sendChunk(cs[ci]!, it.frame);
            this.sentBytes += it.frame.byteLength - 42;
            sentQ.push({ file: it.file, len: it.frame.byteLength - 42 });
            credit--;
            break;
          }
          case "hash": {
            inFlight--;
            readMore();
            const f = this.files[it.file]!;
            if (f.known[it.index] && !sameHash(f.hashes, it.index, it.hash)) throw fail("file_changed", fileChanged());
            f.hashes.set(it.hash, it.index * hashLen);
            f.known[it.index] = 1;
            break;
          }
          case "eof": {
            const f = this.files[it.file]!;
            const root = rootHex(f.src.file.size, this.man.chunkSize, f.hashes);
            this.computedRoots[it.file] = root;
            send(encodeControl({ t: "eof", file: it.file, root }));
            break;
          }
          case "error":
            throw fail("file_changed", it.changed ? fileChanged() : new FerryError("A file could not be read. Was it moved or deleted?"));
          case "end":
            allSent = true;
            break;
        }
        continue;
      }
      if (allSent && !doneSent) {
        send(encodeControl({ t: "done" }));
        doneSent = true;
        continue;
      }
      await wake.wait();
    }
  }

  // plan lists the worker reads for this connection: every chunk the
  // receiver lacks, plus hashes the sender never computed for chunks the
  // receiver already has, so each root covers the whole file.
  private plan(have: Uint8Array[]): Run[] {
    const runs: Run[] = [];
    this.files.forEach((f, i) => {
      if (f.verified) return;
      let cur: Run | null = null;
      for (let k = 0; k < f.n; k++) {
        const h = have[i]![k] === 1;
        if (h && f.known[k]) {
          cur = null;
          continue;
        }
        if (cur && cur.hashOnly === h && cur.start + cur.count === k && cur.count < runMax) {
          cur.count++;
        } else {
          cur = { file: i, start: k, count: 1, hashOnly: h, eof: false };
          runs.push(cur);
        }
      }
      runs.push({ file: i, start: 0, count: 0, hashOnly: true, eof: true });
    });
    return runs;
  }

  private async read(r: Run): Promise<Item[]> {
    if (r.eof) return [{ kind: "eof", file: r.file }];
    const m = await this.worker.request<
      { t: "read"; id: number; frames: ArrayBuffer[]; hashes: ArrayBuffer } | { t: "read-error"; id: number; changed: boolean }
    >((id) => ({ t: "read", id, file: r.file, start: r.start, count: r.count, hashOnly: r.hashOnly }));
    if (m.t === "read-error") return [{ kind: "error", changed: m.changed }];
    const hashes = new Uint8Array(m.hashes);
    const out: Item[] = [];
    for (let k = 0; k < r.count; k++) {
      const hash = hashes.subarray(k * hashLen, (k + 1) * hashLen);
      if (r.hashOnly) out.push({ kind: "hash", file: r.file, index: r.start + k, hash });
      else out.push({ kind: "chunk", file: r.file, index: r.start + k, frame: m.frames[k]!, hash });
    }
    return out;
  }
}

// pickChannel is the index of the channel the next chunk goes on: the one
// with the least buffered, among those under high (-1: none is). The
// slower connections of a lossy path buffer more and so get fewer chunks.
export function pickChannel(chans: readonly { bufferedAmount: number }[], high: number): number {
  let best = -1;
  for (let i = 0; i < chans.length; i++) {
    const b = chans[i]!.bufferedAmount;
    if (b < high && (best < 0 || b < chans[best]!.bufferedAmount)) best = i;
  }
  return best;
}

function sameHash(all: Uint8Array, index: number, h: Uint8Array): boolean {
  for (let i = 0; i < hashLen; i++) if (all[index * hashLen + i] !== h[i]) return false;
  return true;
}

function fileChanged(): FerryError {
  return new FerryError("A file changed on disk while it was being sent. Try again once it is no longer being modified.");
}
