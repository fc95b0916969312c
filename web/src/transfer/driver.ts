// Driver runs a transfer's connection generations (PROTOCOL.md §3.4) for
// both roles: it brings one up, hands it to the transfer, and when it is
// lost resumes signaling if need be (§2.4) and brings up the next, until
// the transfer completes, fails, is canceled from either side, or the other
// side stays lost for reconnectFor. The role says how a generation comes up
// (the sender offers, the receiver answers); the flow pairs, transfers and
// reports. It runs over two seams, a Signaler (net/session.ts) and
// Generations (net/generation.ts), and a Clock, which the unit tests fake;
// when run() settles, every timer and listener it started is gone.
import { every, realClock, type Clock } from "../net/clock";
import { PeerGeneration, type Generation, type GenerationHooks } from "../net/generation";
import { Inbox } from "../net/inbox";
import type { PathMeter } from "../net/path";
import type { Session, Signaler } from "../net/session";
import { ConnLost, FerryError, canceledByPeer } from "../protocol/errors";
import { encodeControl } from "../protocol/frames";
import { close, type Signal } from "../protocol/signal";
import { canceledByUs, internal } from "./errors";
import { backoff, connectTimeout, probeEvery, reconnectFor } from "./timing";

// Flow is a transfer's own part: what happens before the first generation
// and what moves over each one.
export interface Flow {
  // start pairs and runs the handshake; the signaler carries sealed
  // signals when it resolves. race ends a wait early when the driver stops.
  start(race: <T>(p: Promise<T>) => Promise<T>): Promise<void>;
  // transfer moves the files over an open generation; it rejects with
  // ConnLost when the generation broke and the next one can continue.
  transfer(g: Generation, dc: RTCDataChannel): Promise<void>;
  // report tells the server how the transfer ended: completed (null) or
  // with err.
  report(err: FerryError | null): void;
  connected(path: string, gen: number): void;
  reconnecting(): void;
}

// Role is how a side brings up a generation.
export interface Role {
  // connect brings up the generation after last (the latest that opened,
  // 0 for none) and resolves with it and its open data channel; ConnLost
  // means this attempt failed and the next may work.
  connect(d: Driver, last: number): Promise<[Generation, RTCDataChannel]>;
  // signal handles the peer's signals about generations.
  signal(d: Driver, m: Signal): void;
  // lost: signaling is up and generation last is gone (or none came up).
  lost(d: Driver, last: number): void;
  // byeWait is how long the end of a completed transfer waits for the
  // peer's goodbye; deadIsBye: the generation's end counts as one.
  readonly byeWait: number;
  readonly deadIsBye: boolean;
}

export interface DriverOptions {
  signaler: Signaler;
  newGeneration(gen: number, hooks: GenerationHooks): Generation;
  role: Role;
  flow: Flow;
  meter: PathMeter;
  clock?: Clock;
}

// onSession is a page's driver: over its session, with RTCPeerConnections.
export function onSession(s: Session, relayOnly: () => boolean, role: Role, flow: Flow, meter: PathMeter): Driver {
  return new Driver({
    signaler: s,
    newGeneration: (gen, hooks) => new PeerGeneration(gen, s.iceServers, relayOnly(), (m) => void s.signal(m), hooks),
    role,
    flow,
    meter,
  });
}

// Close codes after which no resumption can help: while resuming (§2.4),
// and ending the current signaling connection.
const resumeEnds: ReadonlySet<number> = new Set([close.notFound, close.wrongKey, close.canceled]);
const downEnds: ReadonlySet<number> = new Set([close.wrongKey, close.canceled, close.replaced]);

export class Driver {
  current: Generation | null = null;
  readonly clock: Clock;
  private readonly o: DriverOptions;
  private stopErr: FerryError | null = null;
  private ours: FerryError | null = null;
  private stoppers = new Set<(e: FerryError) => void>();
  private timers = new Set<() => void>();
  private downed: { p: Promise<void>; resolve: () => void } | null = null;
  private byeSeen!: () => void;
  private readonly peerBye = new Promise<void>((r) => (this.byeSeen = r));
  // tracked is the clock whose timers run() clears when it ends.
  private readonly tracked: Clock;

  constructor(o: DriverOptions) {
    this.o = o;
    this.clock = o.clock ?? realClock;
    this.tracked = { now: () => this.clock.now(), after: (ms, f) => this.after(ms, f) };
  }

  async run(): Promise<void> {
    const { signaler, flow } = this.o;
    const unlisten = signaler.listen({ signal: (m) => this.onSignal(m), down: (e) => this.onDown(e) });
    try {
      await flow.start((p) => this.race(p));
      await this.loop();
      await this.finish();
    } catch (e) {
      const err = internal(e);
      flow.report(err);
      await this.leave(err);
      throw err;
    } finally {
      unlisten();
      this.o.meter.stop();
      this.current?.fail("closed");
      for (const off of [...this.timers]) off();
      this.downed = null;
    }
  }

  private async loop(): Promise<void> {
    const { signaler, role, flow, meter } = this.o;
    let last = 0; // the latest generation that opened
    let lostAt = 0;
    for (;;) {
      if (lostAt && this.clock.now() - lostAt > reconnectFor) {
        throw new FerryError("The connection to the other side was lost and could not be restored.");
      }
      if (!signaler.connected) {
        console.debug("ferry: signaling lost; resuming the session");
        try {
          await this.race(signaler.resume());
          console.debug("ferry: session resumed");
          role.lost(this, last);
        } catch (e) {
          if (this.stopErr) throw this.stopErr;
          if (e instanceof FerryError && resumeEnds.has(e.code)) throw e;
          lostAt ||= this.clock.now();
          await this.race(this.sleep(backoff(this.clock.now() - lostAt)));
          continue;
        }
      }
      let g: Generation;
      let dc: RTCDataChannel;
      try {
        [g, dc] = await this.race(this.waiting(role.connect(this, last)));
      } catch (e) {
        if (!(e instanceof ConnLost)) throw e;
        lostAt ||= this.clock.now();
        this.lost(last);
        continue;
      }
      last = g.gen;
      flow.connected(await meter.follow(g), g.gen);
      lostAt = 0;
      try {
        await this.race(flow.transfer(g, dc));
        return;
      } catch (e) {
        // A fatal error or cancel keeps the generation up for leave().
        if (!(e instanceof ConnLost)) throw e;
        g.fail("transfer interrupted");
        meter.stop();
        console.debug(`ferry: generation ${g.gen} lost: ${e.message}`);
        lostAt = this.clock.now();
        this.lost(last);
      }
    }
  }

  // lost tells the page and the peer a generation is gone, and checks
  // signaling: a lost path often means a new network, which leaves the
  // WebSocket dead without a word.
  private lost(last: number): void {
    const { signaler, role, flow } = this.o;
    flow.reconnecting();
    if (signaler.connected) role.lost(this, last);
    signaler.probe();
  }

  // finish ends a completed transfer: the report, then goodbye, and a
  // moment for the peer's (closing first would cut its signaling
  // connection before its report is in).
  private async finish(): Promise<void> {
    const { meter, flow, signaler, role } = this.o;
    // The path at the end, and the bytes of the last second.
    await meter.sample();
    meter.stop();
    flow.report(null);
    signaler.signal({ t: "bye", reason: "done" });
    const dead = role.deadIsBye && this.current ? this.current.dead : this.peerBye;
    await this.until(Promise.race([this.peerBye, dead]), role.byeWait);
  }

  // leave tells the peer we are going after a cancel (PROTOCOL.md §4.6,
  // §2.5): over the data channel when it is up (and then waits a little
  // for the peer's goodbye, so its report reaches the server before we
  // close), else by asking the server to end the pairing. Only our own
  // cancel sends a cancel and waits for a goodbye.
  private async leave(err: FerryError): Promise<void> {
    if (err.outcome !== "canceled" || err.code === close.canceled) return;
    const { signaler } = this.o;
    const ours = err === this.ours;
    const dc = this.current?.dc;
    if (dc?.readyState === "open") {
      if (ours) dc.send(encodeControl({ t: "cancel", reason: "canceled" }) as Uint8Array<ArrayBuffer>);
      signaler.signal({ t: "bye", reason: "canceled" });
      if (ours) await this.until(this.peerBye, 2000);
    } else if (ours) {
      signaler.signal({ t: "bye", reason: "canceled" });
      signaler.send({ type: "abort", reason: "canceled" });
    }
  }

  // peerFeatures are the features of the peer's info (PROTOCOL.md §3.3).
  private peerFeatures: readonly string[] = [];

  // peerHas: the peer announced feature f.
  peerHas(f: string): boolean {
    return this.peerFeatures.includes(f);
  }

  private onSignal(m: Signal): void {
    if (m.t !== "cand") console.debug(`ferry: signal ${m.t} ${m.type ?? m.reason ?? ""} gen ${m.gen ?? "-"}${m.stripe ? ` stripe ${m.stripe}` : ""}`);
    if (m.t === "info") {
      this.peerFeatures = Array.isArray(m.features) ? m.features.filter((f) => typeof f === "string") : [];
      return;
    }
    // A stripe's description goes to its generation, if it is the current
    // one (PROTOCOL.md §3.4).
    if (m.t === "sdp" && m.stripe) {
      const g = this.current;
      if (g && m.gen === g.gen) g.stripeSignal(m);
      return;
    }
    if (m.t === "bye") {
      this.byeSeen();
      if (m.reason === "canceled") this.stop(canceledByPeer());
      return;
    }
    this.o.role.signal(this, m);
  }

  private onDown(err: FerryError): void {
    this.downed?.resolve();
    this.downed = null;
    if (downEnds.has(err.code)) this.stop(err.code === close.canceled ? canceledByPeer() : err);
    // Signaling lost while ICE has lost the peer too: the network changed
    // under both, and the connection will not come back either. Give it up
    // now rather than after ICE's grace, and resume.
    else if (this.current?.disconnected) this.current.fail("signaling lost and ICE disconnected");
  }

  // generation makes generation gen the current one.
  generation(gen: number): Generation {
    if (this.stopErr) throw this.stopErr;
    const { signaler } = this.o;
    const g = this.o.newGeneration(gen, {
      // The peer went silent: if the network changed, the signaling
      // WebSocket is dead too, and the sooner that is known the sooner
      // the session resumes on a new one.
      silent: () => signaler.probe(),
      disconnected: () => {
        if (!signaler.connected) g.fail("ICE disconnected and signaling lost");
      },
    });
    this.current = g;
    return g;
  }

  signal(m: Signal): void {
    this.o.signaler.signal(m);
  }

  // down resolves when the current signaling connection ends: offers and
  // answers come over it, so without it a generation cannot come up.
  down(): Promise<void> {
    if (!this.o.signaler.connected) return Promise.resolve();
    if (!this.downed) {
      let resolve!: () => void;
      const p = new Promise<void>((r) => (resolve = r));
      this.downed = { p, resolve };
    }
    return this.downed.p;
  }

  // race ends p early when the driver is stopped (cancel, fatal signal).
  race<T>(p: Promise<T>): Promise<T> {
    if (this.stopErr) {
      p.catch(() => {});
      return Promise.reject(this.stopErr);
    }
    return new Promise<T>((resolve, reject) => {
      this.stoppers.add(reject);
      p.then(
        (v) => {
          this.stoppers.delete(reject);
          resolve(v);
        },
        (e: unknown) => {
          this.stoppers.delete(reject);
          reject(e);
        },
      );
    });
  }

  private stop(err: FerryError): void {
    if (this.stopErr) return;
    this.stopErr = err;
    for (const reject of [...this.stoppers]) reject(err);
    this.stoppers.clear();
  }

  cancel(): void {
    this.ours = canceledByUs();
    this.stop(this.ours);
  }

  // after calls f in ms unless the returned function cancels it, or run()
  // ends first.
  after(ms: number, f: () => void): () => void {
    const off = (): void => {
      if (this.timers.delete(off)) cancel();
    };
    const cancel = this.clock.after(ms, () => {
      this.timers.delete(off);
      f();
    });
    this.timers.add(off);
    return off;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.after(ms, r));
  }

  // until waits for p, at most ms.
  private async until(p: Promise<unknown>, ms: number): Promise<void> {
    let off = (): void => {};
    await Promise.race([p, new Promise<void>((r) => (off = this.after(ms, r)))]);
    off();
  }

  // waiting is p; meanwhile (the page waits for the other side) it checks
  // the signaling connection every probeEvery.
  private async waiting<T>(p: Promise<T>): Promise<T> {
    const stop = every(this.tracked, probeEvery, () => this.o.signaler.probe());
    try {
      return await p;
    } finally {
      stop();
    }
  }
}

// Offerer is the sender's role: it offers each generation.
export class Offerer implements Role {
  readonly byeWait = 3000;
  readonly deadIsBye = false;
  private n = 0;

  async connect(d: Driver): Promise<[Generation, RTCDataChannel]> {
    const g = d.generation(++this.n);
    console.debug(`ferry: offering connection generation ${g.gen}`);
    let off = (): void => {};
    try {
      await g.offer().catch((e: unknown) => Promise.reject(g.failed ? new ConnLost("closed while offering") : e));
      const dc = await Promise.race([
        g.open,
        g.dead.then((e) => Promise.reject(e)),
        // The answer comes over signaling: without it, resume first.
        d.down().then(() => Promise.reject(new ConnLost("signaling lost while connecting"))),
        new Promise<never>((_, reject) => (off = d.after(connectTimeout, () => reject(new ConnLost("no connection in time"))))),
      ]);
      return [g, dc];
    } catch (e) {
      g.fail("not connected");
      throw e;
    } finally {
      off();
    }
  }

  signal(d: Driver, m: Signal): void {
    const g = d.current;
    switch (m.t) {
      case "sdp":
        if (m.type === "answer" && g && m.gen === g.gen) g.setAnswer(m.sdp ?? "").catch(() => g.fail("bad answer"));
        return;
      case "cand":
        if (g && m.gen === g.gen) g.addCandidate(m);
        return;
      case "restart":
        // The receiver lost generation m.gen (0: it has none). A generation
        // still connecting is the answer already on its way, as in the Go
        // peer.
        if (g && g.dc?.readyState === "open" && (!m.gen || m.gen >= g.gen)) g.fail("the receiver asked to reconnect");
        return;
    }
  }

  lost(): void {}
}

// Answerer is the receiver's role: it answers the sender's offers.
export class Answerer implements Role {
  readonly byeWait = 5000;
  readonly deadIsBye = true;
  private offers = new Inbox<Signal>();
  private nextOffer: Promise<Signal> | null = null;
  // Candidates for a generation whose offer is still being answered.
  private early = new Map<number, Signal[]>();

  // connect answers the sender's offers newer than last until one
  // generation's data channel opens.
  async connect(d: Driver, last: number): Promise<[Generation, RTCDataChannel]> {
    let g: Generation | null = null;
    let off = (): void => {};
    const timeout = new Promise<{ timeout: true }>((r) => (off = d.after(connectTimeout, () => r({ timeout: true }))));
    const never = new Promise<never>(() => {});
    // One pending next() at a time, kept across calls.
    this.nextOffer ??= this.offers.next();
    try {
      for (;;) {
        const r = await Promise.race([
          this.nextOffer.then((o) => ({ o })),
          g ? g.open.then((dc) => ({ dc })) : never,
          g ? g.dead.then((dead) => ({ dead })) : never,
          // Offers come over signaling: without it, resume first.
          d.down().then(() => ({ dead: true })),
          timeout,
        ]);
        if ("dc" in r && g) return [g, r.dc];
        if ("dead" in r || "timeout" in r) {
          g?.fail("not connected");
          throw new ConnLost("no connection in time");
        }
        if ("o" in r) {
          this.nextOffer = this.offers.next();
          const o = r.o;
          const gen = o.gen ?? 0;
          if (gen <= (g?.gen ?? last)) continue; // stale
          g?.fail("superseded");
          console.debug(`ferry: answering connection generation ${gen}`);
          g = d.generation(gen);
          const cands = this.early.get(gen) ?? [];
          for (const k of [...this.early.keys()]) if (k <= gen) this.early.delete(k);
          await g.answer(o.sdp ?? "");
          for (const c of cands) g.addCandidate(c);
        }
      }
    } finally {
      off();
    }
  }

  signal(d: Driver, m: Signal): void {
    const g = d.current;
    if (m.t === "sdp" && m.type === "offer") {
      this.offers.push(m);
      // The sender offers a newer generation only once it gave the current
      // one up: end ours now, not when we notice (up to 4 s without
      // traffic), so that the transfer resumes at once.
      // (A generation still connecting is superseded by connect itself.)
      if (g && !g.failed && g.dc && (m.gen ?? 0) > g.gen) g.fail("superseded");
    } else if (m.t === "cand") {
      if (g && m.gen === g.gen) {
        g.addCandidate(m);
      } else if ((m.gen ?? 0) > (g?.gen ?? 0)) {
        // Candidates may arrive while their offer is still being answered.
        const list = this.early.get(m.gen ?? 0) ?? [];
        if (this.early.size < 8 && list.length < 64) this.early.set(m.gen ?? 0, [...list, m]);
      }
    }
  }

  // lost asks the sender for a new generation.
  lost(d: Driver, last: number): void {
    d.signal({ t: "restart", gen: last });
  }
}
