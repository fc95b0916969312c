// Unit tests of the connection driver (src/transfer/driver.ts) for both
// roles, over a fake signaler, fake generations and a fake clock: restarts
// after a dead connection, resuming signaling, cancels and goodbyes from
// either side, giving up, and signals out of order. Every test ends with
// the leak check: no timer pending on the clock, no listener left on the
// signaler, every generation closed.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Clock } from "../src/net/clock";
import type { Generation, GenerationHooks } from "../src/net/generation";
import { PathMeter, type PathSample } from "../src/net/path";
import type { Signaler, SignalListener } from "../src/net/session";
import { ConnLost, FerryError } from "../src/protocol/errors";
import { parseControl } from "../src/protocol/frames";
import type { Signal } from "../src/protocol/signal";
import { Answerer, Driver, Offerer, type Flow, type Role } from "../src/transfer/driver";
import { connectTimeout, reconnectFor } from "../src/transfer/timing";

console.debug = () => {};

// settle lets every promise reaction that is ready run.
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

class FakeClock implements Clock {
  t = 1000;
  private timers = new Map<number, { at: number; f: () => void }>();
  private id = 0;
  now(): number {
    return this.t;
  }
  after(ms: number, f: () => void): () => void {
    const id = ++this.id;
    this.timers.set(id, { at: this.t + ms, f });
    return () => this.timers.delete(id);
  }
  get pending(): number {
    return this.timers.size;
  }
  // advance moves time on by ms, firing due timers in order.
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; f: () => void }] | null = null;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].f();
    }
    this.t = end;
    await settle();
  }
}

class FakeSignaler implements Signaler {
  connected = true;
  listeners = new Set<SignalListener>();
  signals: Signal[] = [];
  server: Record<string, unknown>[] = [];
  probes = 0;
  // resumes: what each resume() does; past the list it succeeds.
  resumes: (FerryError | null)[] = [];
  resumed = 0;
  signal(s: Signal): void {
    if (this.connected) this.signals.push(s);
  }
  send(m: Record<string, unknown>): void {
    if (this.connected) this.server.push(m);
  }
  listen(l: SignalListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  probe(): void {
    this.probes++;
  }
  async resume(): Promise<void> {
    const err = this.resumes.shift();
    if (err) throw err;
    this.resumed++;
    this.connected = true;
  }
  // peer delivers a sealed signal from the peer.
  peer(s: Signal): void {
    for (const l of [...this.listeners]) l.signal(s);
  }
  // drop ends the signaling connection.
  drop(code = 1006): void {
    this.connected = false;
    for (const l of [...this.listeners]) l.down(new FerryError("lost", code === 4011 ? "canceled" : "failed", code));
  }
  // take returns the signals sent since the last take.
  take(): Signal[] {
    const s = this.signals;
    this.signals = [];
    return s;
  }
}

class FakeChannel {
  readyState = "open";
  sent: Uint8Array[] = [];
  send(b: Uint8Array): void {
    this.sent.push(b);
  }
}

class FakeGeneration implements Generation {
  readonly open: Promise<RTCDataChannel>;
  readonly dead: Promise<ConnLost>;
  dc: RTCDataChannel | null = null;
  failed = false;
  disconnected = false;
  why = "";
  offered = false;
  answered = "";
  answers: string[] = [];
  cands: string[] = [];
  private opened!: (dc: RTCDataChannel) => void;
  private died!: (e: ConnLost) => void;
  constructor(
    readonly gen: number,
    readonly hooks: GenerationHooks,
  ) {
    this.open = new Promise((r) => (this.opened = r));
    this.dead = new Promise((r) => (this.died = r));
  }
  async offer(): Promise<void> {
    this.offered = true;
  }
  async answer(sdp: string): Promise<void> {
    this.answered = sdp;
  }
  async setAnswer(sdp: string): Promise<void> {
    this.answers.push(sdp);
  }
  addCandidate(s: Signal): void {
    this.cands.push(s.candidate ?? "");
  }
  consume(): void {}
  fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    this.why = why;
    if (this.dc) (this.dc as unknown as FakeChannel).readyState = "closed";
    this.died(new ConnLost(why));
  }
  async sample(): Promise<PathSample | null> {
    return this.failed ? null : { path: "direct", direct: 1, relay: 0 };
  }
  stripes: RTCDataChannel[] = [];
  striped = 0;
  stripeSignals: Signal[] = [];
  stripe(n: number, _relay: boolean): void {
    this.striped = n;
  }
  stripeSignal(s: Signal): void {
    this.stripeSignals.push(s);
  }
  // connect opens the data channel.
  connect(): void {
    const dc = new FakeChannel() as unknown as RTCDataChannel;
    this.dc = dc;
    this.opened(dc);
  }
}

class FakeFlow implements Flow {
  events: string[] = [];
  reports: string[] = [];
  private done: (() => void) | null = null;
  private broke: ((e: unknown) => void) | null = null;
  async start(): Promise<void> {}
  transfer(g: Generation): Promise<void> {
    this.events.push(`transfer ${g.gen}`);
    return new Promise((resolve, reject) => {
      this.done = resolve;
      this.broke = reject;
      void g.dead.then(reject);
    });
  }
  report(err: FerryError | null): void {
    this.reports.push(err ? `${err.outcome}: ${err.message}` : "completed");
  }
  connected(path: string, gen: number): void {
    this.events.push(`connected ${gen} ${path}`);
  }
  reconnecting(): void {
    this.events.push("reconnecting");
  }
  complete(): void {
    this.done?.();
  }
  error(e: unknown): void {
    this.broke?.(e);
  }
}

// rig is one driver with its fakes; end() waits for run() and checks that
// nothing it started is left.
function rig(role: Role) {
  const clock = new FakeClock();
  const sig = new FakeSignaler();
  const flow = new FakeFlow();
  const gens: FakeGeneration[] = [];
  const d = new Driver({
    signaler: sig,
    newGeneration: (gen, hooks) => {
      const g = new FakeGeneration(gen, hooks);
      gens.push(g);
      return g;
    },
    role,
    flow,
    meter: new PathMeter(() => {}, 1000, clock),
    clock,
  });
  let outcome: { ok: true } | { ok: false; err: FerryError } | null = null;
  let endedAt = 0;
  const ran = d.run().then(
    () => (outcome = { ok: true }),
    (err: FerryError) => (outcome = { ok: false, err }),
  );
  void ran.then(() => (endedAt = clock.now()));
  const last = (): FakeGeneration => {
    const g = gens.at(-1);
    assert.ok(g, "a generation was made");
    return g;
  };
  // step lets everything ready run, at the same time.
  const step = (): Promise<void> => clock.advance(0);
  return {
    clock,
    sig,
    flow,
    gens,
    d,
    last,
    step,
    get outcome() {
      return outcome;
    },
    get endedAt() {
      return endedAt;
    },
    // open opens the latest generation's data channel.
    async open(): Promise<FakeGeneration> {
      const g = last();
      g.connect();
      await step();
      return g;
    },
    // offer is the sender's offer of generation gen.
    async offer(gen: number, sdp: string): Promise<void> {
      sig.peer({ t: "sdp", type: "offer", sdp, gen });
      await step();
    },
    // end waits for run() (moving the clock on until it returns) and
    // checks for leaks.
    async end(): Promise<{ ok: true } | { ok: false; err: FerryError }> {
      for (let i = 0; i < 1000 && !outcome; i++) await clock.advance(500);
      await ran;
      assert.ok(outcome, "run() ended");
      assert.equal(clock.pending, 0, "no timer left");
      assert.equal(sig.listeners.size, 0, "no signal listener left");
      for (const g of gens) assert.ok(g.failed, `generation ${g.gen} closed`);
      return outcome;
    },
  };
}

// started is a rig whose driver has started.
async function started(role: Role): Promise<ReturnType<typeof rig>> {
  const r = rig(role);
  await r.step();
  return r;
}

// completes finishes the transfer on generation gen, and the goodbyes.
async function completes(r: ReturnType<typeof rig>, gen: number): Promise<void> {
  assert.equal(r.d.current?.gen, gen);
  r.flow.complete();
  await r.step();
  assert.deepEqual(r.sig.take().filter((s) => s.t === "bye"), [{ t: "bye", reason: "done" }]);
  r.sig.peer({ t: "bye", reason: "done" });
  const out = await r.end();
  assert.deepEqual(out, { ok: true });
  assert.deepEqual(r.flow.reports, ["completed"]);
}

test("sender: a dead generation is followed by the next", async () => {
  const r = await started(new Offerer());
  const g1 = r.last();
  assert.equal(g1.gen, 1);
  assert.ok(g1.offered);
  r.sig.peer({ t: "sdp", type: "answer", sdp: "a1", gen: 1 });
  await r.step();
  assert.deepEqual(g1.answers, ["a1"]);
  await r.open();
  assert.deepEqual(r.flow.events, ["connected 1 direct", "transfer 1"]);
  g1.fail("test: cut");
  await r.step();
  const g2 = r.last();
  assert.equal(g2.gen, 2, "the next generation is offered at once");
  assert.ok(r.sig.probes >= 1, "signaling is checked after a loss");
  await r.open();
  assert.deepEqual(r.flow.events.slice(2), ["reconnecting", "connected 2 direct", "transfer 2"]);
  await completes(r, 2);
});

test("receiver: a dead generation asks the sender for the next", async () => {
  const r = rig(new Answerer());
  await r.offer(1, "o1");
  const g1 = r.last();
  assert.equal(g1.answered, "o1");
  await r.open();
  g1.fail("test: cut");
  await r.step();
  assert.deepEqual(r.sig.take(), [{ t: "restart", gen: 1 }]);
  await r.offer(2, "o2");
  const g2 = r.last();
  assert.equal(g2.gen, 2);
  await r.open();
  assert.deepEqual(r.flow.events, ["connected 1 direct", "transfer 1", "reconnecting", "connected 2 direct", "transfer 2"]);
  await completes(r, 2);
});

test("receiver: a newer offer during the transfer ends the running generation at once", async () => {
  const r = rig(new Answerer());
  await r.offer(1, "o1");
  const g1 = r.last();
  await r.open();
  await r.offer(2, "o2");
  assert.equal(g1.why, "superseded", "the sender gave generation 1 up");
  const g2 = r.last();
  assert.equal(g2.gen, 2);
  assert.equal(g2.answered, "o2");
  await r.open();
  await completes(r, 2);
});

test("sender: a new address resumes signaling, then the next generation", async () => {
  const r = await started(new Offerer());
  const g1 = r.last();
  await r.open();
  // The network changed: ICE lost the peer and the WebSocket is gone.
  g1.disconnected = true;
  r.sig.resumes = [new FerryError("Cannot reach the ferry server.")];
  r.sig.drop();
  await r.step();
  assert.equal(g1.why, "signaling lost and ICE disconnected");
  assert.equal(r.gens.length, 1, "no offer before signaling is back");
  await r.clock.advance(500); // the first backoff
  assert.equal(r.sig.resumed, 1);
  assert.ok(r.sig.connected);
  const g2 = r.last();
  assert.equal(g2.gen, 2);
  await r.open();
  await completes(r, 2);
});

test("receiver: after resuming signaling it asks for a new generation", async () => {
  const r = rig(new Answerer());
  await r.offer(1, "o1");
  await r.open();
  r.sig.drop();
  r.last().fail("test: cut");
  await r.step();
  assert.equal(r.sig.resumed, 1);
  assert.deepEqual(r.sig.take(), [{ t: "restart", gen: 1 }]);
  await r.offer(2, "o2");
  await r.open();
  await completes(r, 2);
});

test("sender: signaling lost while connecting resumes before offering again", async () => {
  const r = await started(new Offerer());
  r.sig.drop();
  await r.step();
  assert.equal(r.gens[0]!.why, "not connected");
  assert.equal(r.sig.resumed, 1);
  assert.equal(r.last().gen, 2);
  await r.open();
  await completes(r, 2);
});

test("a bye while connecting ends the transfer as canceled by the peer", async () => {
  for (const role of [new Offerer(), new Answerer()]) {
    const r = rig(role);
    r.sig.peer({ t: "sdp", type: "offer", sdp: "o1", gen: 1 });
    await r.step();
    r.sig.peer({ t: "bye", reason: "canceled" });
    const out = await r.end();
    assert.ok(!out.ok);
    assert.equal(out.err.message, "The other side canceled the transfer.");
    assert.equal(out.err.outcome, "canceled");
    assert.deepEqual(r.sig.take(), [], "no goodbye back");
    assert.deepEqual(r.sig.server, [], "no abort");
  }
});

test("a lost peer is given up after the reconnect window", async () => {
  // The receiver hears no offer: each attempt times out and asks again.
  const r = rig(new Answerer());
  await r.offer(1, "o1");
  await r.open();
  r.last().fail("test: cut");
  await r.step();
  const lost = r.clock.now();
  await r.clock.advance(reconnectFor - 1);
  assert.equal(r.outcome, null, "still trying within the window");
  const out = await r.end();
  assert.ok(!out.ok);
  assert.match(out.err.message, /could not be restored/);
  assert.ok(r.endedAt - lost > reconnectFor);
  assert.ok(r.endedAt - lost <= reconnectFor + connectTimeout);
  const restarts = r.sig.take().filter((s) => s.t === "restart");
  assert.ok(restarts.length >= reconnectFor / connectTimeout, `asked again after each timeout (${restarts.length})`);
  assert.deepEqual(r.flow.reports, ["failed: The connection to the other side was lost and could not be restored."]);
});

test("signaling that cannot be resumed is given up after the window, with backoff", async () => {
  const r = await started(new Offerer());
  await r.open();
  r.sig.resumes = Array.from({ length: 1000 }, () => new FerryError("Cannot reach the ferry server."));
  r.sig.drop();
  r.last().fail("test: cut");
  const out = await r.end();
  assert.ok(!out.ok);
  assert.match(out.err.message, /could not be restored/);
  const attempts = 1000 - r.sig.resumes.length;
  // 0.5, 1, 2, 4 s, then every 5 s for two minutes.
  assert.ok(attempts > 20 && attempts < 40, `${attempts} attempts`);
});

test("a resume refused for good ends at once", async () => {
  const r = await started(new Offerer());
  await r.open();
  r.sig.resumes = [new FerryError("gone", "failed", 4004)];
  r.sig.drop();
  r.last().fail("test: cut");
  await r.step();
  const out = await r.end();
  assert.ok(!out.ok);
  assert.equal(out.err.code, 4004);
});

test("our cancel during the transfer tells the peer and waits for its goodbye", async () => {
  const r = await started(new Offerer());
  const g = r.last();
  await r.open();
  r.sig.take();
  r.d.cancel();
  await r.step();
  const sent = (g.dc as unknown as FakeChannel).sent.map((b) => parseControl(b));
  assert.deepEqual(sent, [{ t: "cancel", reason: "canceled" }]);
  assert.deepEqual(r.sig.take(), [{ t: "bye", reason: "canceled" }]);
  assert.equal(r.outcome, null, "waits for the peer's goodbye");
  r.sig.peer({ t: "bye", reason: "canceled" });
  const out = await r.end();
  assert.ok(!out.ok);
  assert.equal(out.err.message, "You canceled the transfer.");
  assert.deepEqual(r.flow.reports, ["canceled: You canceled the transfer."]);
});

test("our cancel with no connection asks the server to end the pairing", async () => {
  const r = await started(new Answerer());
  r.d.cancel();
  const out = await r.end();
  assert.ok(!out.ok);
  assert.equal(out.err.outcome, "canceled");
  assert.deepEqual(r.sig.take(), [{ t: "bye", reason: "canceled" }]);
  assert.deepEqual(r.sig.server, [{ type: "abort", reason: "canceled" }]);
});

test("the peer's cancel, by goodbye or by the server, ends the transfer", async () => {
  for (const how of ["bye", "4011"]) {
    const r = rig(new Answerer());
    r.sig.peer({ t: "sdp", type: "offer", sdp: "o1", gen: 1 });
    await r.step();
    const g = r.last();
    g.connect();
    await r.step();
    if (how === "bye") r.sig.peer({ t: "bye", reason: "canceled" });
    else r.sig.drop(4011);
    const out = await r.end();
    assert.ok(!out.ok);
    assert.equal(out.err.message, "The other side canceled the transfer.", how);
    if (how === "bye") assert.deepEqual(r.sig.take(), [{ t: "bye", reason: "canceled" }], "goodbye back over the open channel");
    assert.deepEqual((g.dc as unknown as FakeChannel).sent, [], "no cancel frame back");
  }
});

test("a transfer error ends the driver without a reconnection", async () => {
  const r = await started(new Offerer());
  await r.open();
  r.flow.error(new FerryError("Verification failed"));
  const out = await r.end();
  assert.ok(!out.ok);
  assert.equal(out.err.message, "Verification failed");
  assert.equal(r.gens.length, 1);
  assert.deepEqual(r.flow.reports, ["failed: Verification failed"]);
});

test("sender: late answers, candidates and restarts of an older generation change nothing", async () => {
  const r = await started(new Offerer());
  const g1 = r.last();
  // A restart for a generation still connecting: the answer is on its way.
  r.sig.peer({ t: "restart", gen: 0 });
  await r.step();
  assert.ok(!g1.failed);
  await r.clock.advance(connectTimeout); // no answer in time
  assert.equal(g1.why, "not connected");
  const g2 = r.last();
  assert.equal(g2.gen, 2);
  r.sig.peer({ t: "sdp", type: "answer", sdp: "late a1", gen: 1 });
  r.sig.peer({ t: "cand", candidate: "late c1", gen: 1 });
  r.sig.peer({ t: "cand", candidate: "c2", gen: 2 });
  r.sig.peer({ t: "sdp", type: "answer", sdp: "a2", gen: 2 });
  await r.step();
  assert.deepEqual(g1.answers, []);
  assert.deepEqual(g1.cands, []);
  assert.deepEqual(g2.answers, ["a2"]);
  assert.deepEqual(g2.cands, ["c2"]);
  await r.open();
  r.sig.peer({ t: "restart", gen: 1 });
  await r.step();
  assert.ok(!g2.failed, "a restart for an older generation is late");
  r.sig.peer({ t: "restart", gen: 2 });
  await r.step();
  assert.equal(g2.why, "the receiver asked to reconnect");
  await r.open();
  await completes(r, 3);
});

test("receiver: early candidates wait for their offer, newer offers win, stale ones are ignored", async () => {
  const r = await started(new Answerer());
  r.sig.peer({ t: "cand", candidate: "c1", gen: 1 });
  r.sig.peer({ t: "cand", candidate: "c2", gen: 2 });
  await r.offer(1, "o1");
  const g1 = r.last();
  assert.deepEqual(g1.cands, ["c1"]);
  // The sender gave generation 1 up and offers 2 before 1 opened.
  await r.offer(2, "o2");
  assert.equal(g1.why, "superseded");
  const g2 = r.last();
  assert.equal(g2.answered, "o2");
  assert.deepEqual(g2.cands, ["c2"]);
  r.sig.peer({ t: "sdp", type: "offer", sdp: "late o1", gen: 1 });
  r.sig.peer({ t: "cand", candidate: "late c1", gen: 1 });
  await r.step();
  assert.equal(r.gens.length, 2, "a stale offer makes no generation");
  assert.deepEqual(g1.cands, ["c1"]);
  await r.open();
  g2.fail("test: cut");
  await r.step();
  // An offer older than the last connected generation is stale too.
  await r.offer(2, "o2 again");
  assert.equal(r.gens.length, 2);
  await r.offer(3, "o3");
  await r.open();
  await completes(r, 3);
});

test("a silent peer makes the driver check signaling; ICE lost without signaling fails the generation", async () => {
  const r = await started(new Offerer());
  const g = r.last();
  await r.open();
  const probes = r.sig.probes;
  g.hooks.silent();
  assert.equal(r.sig.probes, probes + 1);
  g.hooks.disconnected();
  assert.ok(!g.failed, "signaling is up: ICE may come back");
  r.sig.resumes = [new FerryError("Cannot reach the ferry server.")];
  r.sig.drop();
  g.hooks.disconnected();
  assert.equal(g.why, "ICE disconnected and signaling lost");
  await r.clock.advance(500);
  await r.open();
  await completes(r, 2);
});

test("waiting for the peer probes signaling every 15 s", async () => {
  const r = await started(new Answerer());
  const probes = r.sig.probes;
  await r.clock.advance(29_000);
  assert.equal(r.sig.probes - probes, 1);
  r.d.cancel();
  await r.end();
});

test("stripe descriptions go to the current generation only, and never start a generation", async () => {
  const r = rig(new Answerer());
  // The sender's info says what it can do.
  r.sig.peer({ t: "info", agent: "x", features: ["resume", "stripes"] });
  assert.ok(r.d.peerHas("stripes"));
  assert.ok(!r.d.peerHas("zero-checksum"));
  await r.offer(1, "o1");
  const g1 = r.last();
  await r.open();
  r.sig.peer({ t: "sdp", type: "offer", sdp: "s1", gen: 1, stripe: 1 });
  r.sig.peer({ t: "sdp", type: "offer", sdp: "s-old", gen: 0, stripe: 2 });
  r.sig.peer({ t: "sdp", type: "offer", sdp: "s-new", gen: 2, stripe: 1 });
  await r.step();
  assert.deepEqual(g1.stripeSignals.map((s) => s.sdp), ["s1"]);
  assert.equal(r.gens.length, 1, "a stripe's offer is not a new generation");
  assert.equal(g1.answered, "o1");
  await completes(r, 1);
});

test("sender: stripe answers go to their generation", async () => {
  const r = await started(new Offerer());
  const g1 = r.last();
  await r.open();
  r.sig.peer({ t: "sdp", type: "answer", sdp: "a-s3", gen: 1, stripe: 3 });
  r.sig.peer({ t: "sdp", type: "answer", sdp: "a-main", gen: 1 });
  await r.step();
  assert.deepEqual(g1.stripeSignals.map((s) => s.sdp), ["a-s3"]);
  assert.deepEqual(g1.answers, ["a-main"]);
  await completes(r, 1);
});
