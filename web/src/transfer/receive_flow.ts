// ReceiveFlow is the whole receiving side: join, handshake, answering each
// connection generation, the transfer, and resuming after losses.
import { Inbox } from "../net/inbox";
import { Link } from "../net/link";
import { PathMeter } from "../net/path";
import { Session, waitPaired } from "../net/session";
import { SignalingConn } from "../net/signaling";
import type { Manifest } from "../protocol/control";
import { agent, features, reportNames, type Signal } from "../protocol/signal";
import type { Ticket } from "../protocol/ticket";
import { ConnLost, FerryError, canceledByPeer, canceledByUs, internal } from "./errors";
import type { Progress } from "./progress";
import { Receiver, type Sink } from "./receiver";
import { leave } from "./leave";
import { backoff, connectTimeout, reconnectFor, until } from "./timing";
import { WorkerClient } from "./worker_client";

export interface ReceiveEvents {
  paired(): void;
  phrase(words: string[]): void;
  connected(path: string, gen: number): void;
  // path: the connection moved to another path (direct or relay).
  path(path: string): void;
  reconnecting(): void;
  // manifest asks the person; it resolves with where to save, or null.
  manifest(m: Manifest): Promise<Sink | null>;
  progress(p: Progress): void;
}

export class ReceiveFlow {
  readonly session: Session;
  readonly worker = new WorkerClient();
  receiver: Receiver | null = null;
  link: Link | null = null;
  private offers = new Inbox<Signal>();
  private nextOffer: Promise<Signal> | null = null;
  private early = new Map<number, Signal[]>();
  private stop: ((e: FerryError) => void) | null = null;
  private stopped: Promise<FerryError>;
  private canceled = false;
  // meter follows the path of the current connection (badge and report).
  readonly meter: PathMeter;
  private senderBye: Promise<void>;
  private byeSeen!: () => void;

  constructor(
    private base: string,
    private ticket: Ticket,
    private relayOnly: () => boolean,
    private ev: ReceiveEvents,
  ) {
    this.session = new Session("R", base);
    this.meter = new PathMeter((p) => this.ev.path(p));
    this.stopped = new Promise((r) => (this.stop = r));
    this.senderBye = new Promise((r) => (this.byeSeen = r));
  }

  get refetched(): number {
    return this.receiver?.refetched ?? 0;
  }

  get generation(): number {
    return this.link?.gen ?? 0;
  }

  async run(): Promise<void> {
    try {
      await this.transfer();
      // The path at the end, and the bytes of the last second.
      await this.meter.sample();
      this.meter.stop();
      const man = this.receiver!.man!;
      // Report first, then say goodbye on the same connection, so the
      // report is in before the sender closes.
      this.report("completed", man.totalSize, man.files.length);
      void this.session.signal({ t: "bye", reason: "done" });
      await until(Promise.race([this.senderBye, this.link?.dead ?? Promise.resolve()]), 5000);
    } catch (e) {
      const err = internal(e);
      if (this.receiver?.man && !this.receiver.complete) this.receiver.abort();
      const man = this.receiver?.man;
      if (man) this.report(err.outcome, this.receiver!.doneBytes, man.files.length);
      await leave(this.session, this.link, err, this.stopReason, this.senderBye);
      throw err;
    } finally {
      this.close();
    }
  }

  private async transfer(): Promise<void> {
    const s = this.session;
    const sig = await SignalingConn.open(this.base);
    s.sig = sig;
    sig.send({ type: "join", id: this.ticket.id });
    const joined = await this.race(sig.expect("joined"));
    this.auditNames = joined.auditNames === true;
    await this.race(waitPaired(sig));
    this.ev.paired();
    const keys = await this.race(s.handshake(sig, this.ticket.secret, this.ticket.id));
    this.ev.phrase(keys.phrase);
    s.onSignal = (m) => this.onSignal(m);
    s.onDown = (err) => {
      if (err.code === 4007 || err.code === 4011 || err.code === 4014) this.stop?.(err.code === 4011 ? canceledByPeer() : err);
      // See SendFlow: signaling and ICE both lost.
      else if (this.link?.disconnected) this.link.fail("signaling lost and ICE disconnected");
    };
    s.attach(sig, keys, joined.iceServers);
    void s.signal({ t: "info", agent, features });
    this.receiver = new Receiver(this.worker, (m) => this.ev.manifest(m), joined.maxBytes ?? 0);

    let gen = 0;
    let lostAt = 0;
    for (;;) {
      if (lostAt && performance.now() - lostAt > reconnectFor) {
        throw new FerryError("The connection to the other side was lost and could not be restored.");
      }
      if (!s.connected) {
        console.debug("ferry: signaling lost; resuming the session");
        try {
          await this.race(s.reconnect());
          console.debug("ferry: session resumed");
          void s.signal({ t: "restart", gen });
        } catch (e) {
          if (e instanceof FerryError && (e.code === 4004 || e.code === 4007 || e.code === 4011)) throw e;
          if (this.canceled) throw e;
          lostAt ||= performance.now();
          await this.race(backoff(lostAt));
          continue;
        }
      }
      let link: Link;
      let dc: RTCDataChannel;
      try {
        [link, dc] = await this.race(s.waiting(this.nextLink(gen)));
      } catch (e) {
        if (!(e instanceof ConnLost)) throw e;
        lostAt ||= performance.now();
        this.ev.reconnecting();
        void s.signal({ t: "restart", gen });
        void s.probe();
        continue;
      }
      gen = link.gen;
      this.ev.connected(await this.meter.follow(link), gen);
      lostAt = 0;
      try {
        await this.race(this.receiver.run(link, dc, this.ev.progress));
        return;
      } catch (e) {
        // A fatal error or cancel keeps the link up for leave().
        if (!(e instanceof ConnLost)) throw e;
        link.fail("transfer interrupted");
        this.meter.stop();
        console.debug(`ferry: generation ${gen} lost: ${e.message}`);
        lostAt = performance.now();
        this.ev.reconnecting();
        if (s.connected) void s.signal({ t: "restart", gen });
        // A lost path often means a new network, which leaves the
        // signaling WebSocket dead without a word: check it.
        void s.probe();
      }
    }
  }

  // nextLink answers the sender's offers newer than gen until one
  // generation's data channel opens.
  private async nextLink(gen: number): Promise<[Link, RTCDataChannel]> {
    const deadline = performance.now() + connectTimeout;
    let link: Link | null = null;
    // One pending next() at a time, kept across calls.
    this.nextOffer ??= this.offers.next();
    for (;;) {
      const left = deadline - performance.now();
      const r = await Promise.race([
        this.nextOffer.then((o) => ({ o })),
        link ? link.open.then((dc) => ({ dc })) : new Promise<never>(() => {}),
        link ? link.dead.then((d) => ({ d })) : new Promise<never>(() => {}),
        // Offers come over signaling: without it, resume first.
        this.session.down().then((d) => ({ d })),
        new Promise<{ timeout: true }>((res) => setTimeout(() => res({ timeout: true }), Math.max(0, left))),
      ]);
      if ("dc" in r && link) return [link, r.dc];
      if ("d" in r || "timeout" in r) {
        link?.fail("not connected");
        throw new ConnLost("no connection in time");
      }
      if ("o" in r) {
        this.nextOffer = this.offers.next();
        const o = r.o;
        if ((o.gen ?? 0) <= (link?.gen ?? gen)) continue; // stale
        link?.fail("superseded");
        console.debug(`ferry: answering connection generation ${o.gen}`);
        link = new Link(o.gen!, this.session.iceServers, this.relayOnly(), (m) => void this.session.signal(m));
        // See SendFlow: a silent peer may mean a dead WebSocket.
        link.onSilent = () => void this.session.probe();
        const l = link;
        l.onDisconnected = () => {
          if (!this.session.connected) l.fail("ICE disconnected and signaling lost");
        };
        this.link = link;
        const cands = this.early.get(o.gen!) ?? [];
        for (const g of [...this.early.keys()]) if (g <= o.gen!) this.early.delete(g);
        await link.answer(o.sdp ?? "");
        for (const c of cands) link.addCandidate(c);
      }
    }
  }

  private onSignal(m: Signal): void {
    const l = this.link;
    if (m.t !== "cand") console.debug(`ferry: signal ${m.t} ${m.type ?? m.reason ?? ""} gen ${m.gen ?? "-"}`);
    switch (m.t) {
      case "sdp":
        if (m.type === "offer") this.offers.push(m);
        return;
      case "cand":
        if (l && m.gen === l.gen) {
          l.addCandidate(m);
        } else if ((m.gen ?? 0) > (l?.gen ?? 0)) {
          // Candidates can overtake nothing, but may arrive while the
          // offer is still being answered.
          const list = this.early.get(m.gen ?? 0) ?? [];
          if (this.early.size < 8 && list.length < 64) this.early.set(m.gen ?? 0, [...list, m]);
        }
        return;
      case "bye":
        this.byeSeen();
        if (m.reason === "canceled") this.stop?.(canceledByPeer());
        return;
    }
  }

  private race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.stopped.then((e) => Promise.reject(e))]);
  }

  cancel(): void {
    this.canceled = true;
    this.stopReason = canceledByUs();
    this.stop?.(this.stopReason);
  }
  private stopReason: FerryError | null = null;

  // auditNames: see SendFlow.report.
  private auditNames = false;

  private report(outcome: string, bytes: number, files: number): void {
    const paths = this.auditNames ? this.receiver?.man?.files.map((f) => f.path) : undefined;
    const names = paths ? reportNames(paths) : undefined;
    this.session.send({ type: "report", path: this.meter.reported, bytes, outcome, files, ...(names ? { names } : {}) });
  }

  private close(): void {
    this.meter.stop();
    this.link?.fail("closed");
    this.session.close();
  }
}
