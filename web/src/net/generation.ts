// A connection generation (PROTOCOL.md §3.4) is one RTCPeerConnection and
// its data channel "ferry", and, when striped, stripe connections beside
// it, each with one data channel that carries only CHUNK frames from the
// sender to the receiver. The sender offers, the receiver answers;
// candidates trickle sealed, tagged with the generation (a stripe's travel
// in its description).
import { frameChunk, maxStripes, stripeDescribeWaitMs } from "../protocol/constants_gen";
import { ConnLost } from "../protocol/errors";
import type { IceServer, Signal } from "../protocol/signal";
import { samplePath, type PathSample, type StatsLike } from "./path";
import { relayedStripeOffer, stripeKeepsIceUrl } from "./stripes";

// Generation is what the connection driver (transfer/driver.ts) and the
// transfer engines use of one; the unit tests fake it.
export interface Generation {
  readonly gen: number;
  // open resolves with the data channel once it is open; dead with why the
  // generation ended (it never resolves before fail()).
  readonly open: Promise<RTCDataChannel>;
  readonly dead: Promise<ConnLost>;
  readonly dc: RTCDataChannel | null;
  readonly failed: boolean;
  // disconnected: ICE has lost the peer for now.
  readonly disconnected: boolean;
  offer(): Promise<void>;
  answer(sdp: string): Promise<void>;
  setAnswer(sdp: string): Promise<void>;
  addCandidate(s: Signal): void;
  consume(f: (b: ArrayBuffer) => void): void;
  fail(why: string): void;
  sample(): Promise<PathSample | null>;
  // stripe offers stripe connections 1..n-1 beside the main one (sender;
  // PROTOCOL.md §3.4), through the relay if relay.
  stripe(n: number, relay: boolean): void;
  // stripeSignal takes the peer's description of a stripe connection.
  stripeSignal(s: Signal): void;
  // stripes are the open stripe data channels, in the order they opened:
  // the sender may send CHUNK frames on them as well as on dc.
  readonly stripes: readonly RTCDataChannel[];
}

// GenerationHooks are told what the generation notices about the peer.
export interface GenerationHooks {
  // silent: nothing arrived on the open data channel for 2 s, or ICE says
  // it is disconnected. Either is the first sign that the network may have
  // changed (or just an idle moment); it is called again only after the
  // peer was heard from in between.
  silent(): void;
  // disconnected: ICE stopped hearing the peer's answers to its checks;
  // the generation fails 4 s later unless they come back.
  disconnected(): void;
}

const disconnectGrace = 4000;
// srflxWait bounds how long a generation holds its description back for its own
// server-reflexive candidate (describe).
const srflxWait = 1000;
// silence is how long an open data channel may bring nothing before the
// generation says the peer went silent (during a transfer chunks or ACKs arrive
// many times a second).
const silence = 2000;
export const channelLabel = "ferry";
export const stripeLabel = "ferry-stripe";
// stripeConnect bounds how long a stripe may take to open; one that does
// not is dropped (the generation goes on without it).
const stripeConnect = 15000;

export class PeerGeneration implements Generation {
  readonly pc: RTCPeerConnection;
  dc: RTCDataChannel | null = null;
  readonly open: Promise<RTCDataChannel>;
  readonly dead: Promise<ConnLost>;
  private resolveOpen!: (dc: RTCDataChannel) => void;
  private resolveDead!: (e: ConnLost) => void;
  private isDead = false;
  private remoteSet = false;
  private pending: RTCIceCandidateInit[] = [];
  private disconnectTimer = 0;
  private sentCands = 0;
  private gotCands = 0;
  private heard = 0;
  private silent = false;
  private silenceTimer = 0;
  // Candidates gathered before the description was sent wait for it.
  private described = false;
  private held: Signal[] = [];
  private readonly srflx: Promise<void>;
  private srflxFound!: () => void;
  private readonly awaitSrflx: boolean;

  constructor(
    readonly gen: number,
    private readonly iceServers: IceServer[],
    private readonly relayOnly: boolean,
    private signal: (s: Signal) => void,
    private hooks: GenerationHooks,
  ) {
    this.open = new Promise((r) => (this.resolveOpen = r));
    this.dead = new Promise((r) => (this.resolveDead = r));
    this.srflx = new Promise((r) => (this.srflxFound = r));
    // Relay-only gathers no server-reflexive candidate.
    this.awaitSrflx = !relayOnly;
    this.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relayOnly ? "relay" : "all" });
    this.pc.onicecandidate = (e) => {
      if (this.isDead) return;
      if (!e.candidate) {
        this.srflxFound(); // gathering is complete: there will be none
        this.trickle({ t: "cand", candidate: "", gen });
        return;
      }
      if (e.candidate.type === "srflx") this.srflxFound();
      const c = e.candidate.toJSON();
      this.sentCands++;
      this.trickle({ t: "cand", candidate: c.candidate ?? "", sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null, gen });
    };
    this.pc.onconnectionstatechange = () => {
      const s = this.pc.connectionState;
      if (s === "failed" || s === "closed") this.fail(`peer connection ${s}`);
    };
    this.pc.oniceconnectionstatechange = () => {
      const s = this.pc.iceConnectionState;
      if (s === "disconnected") {
        if (!this.disconnectTimer) this.disconnectTimer = window.setTimeout(() => this.fail("no traffic for 4 s"), disconnectGrace);
        this.quiet();
        this.hooks.disconnected();
      } else if (s === "connected" || s === "completed") {
        clearTimeout(this.disconnectTimer);
        this.disconnectTimer = 0;
      } else if (s === "failed") {
        this.fail("ICE failed");
      }
    };
  }

  // Messages are buffered from the moment the channel exists, so nothing
  // the peer sends before the transfer engine takes over is lost.
  private early: ArrayBuffer[] = [];
  private consumer: ((b: ArrayBuffer) => void) | null = null;

  // consume hands every message (buffered ones first) to f.
  consume(f: (b: ArrayBuffer) => void): void {
    this.consumer = f;
    const early = this.early;
    this.early = [];
    for (const b of early) f(b);
  }

  private deliver(b: ArrayBuffer): void {
    this.heard = performance.now();
    this.silent = false;
    if (this.consumer) this.consumer(b);
    else this.early.push(b);
  }

  private watch(dc: RTCDataChannel): void {
    dc.binaryType = "arraybuffer";
    this.dc = dc;
    dc.onmessage = (e) => this.deliver(e.data as ArrayBuffer);
    dc.onopen = () => this.opened(dc);
    dc.onclose = () => this.fail("data channel closed");
    if (dc.readyState === "open") this.opened(dc);
  }

  private opened(dc: RTCDataChannel): void {
    this.resolveOpen(dc);
    if (this.silenceTimer || this.isDead) return;
    this.heard = performance.now();
    this.silenceTimer = window.setInterval(() => {
      if (performance.now() - this.heard > silence) this.quiet();
    }, silence / 4);
  }

  private quiet(): void {
    if (this.silent || this.isDead) return;
    this.silent = true;
    this.hooks.silent();
  }

  // offer creates the data channel and sends the offer (sender).
  async offer(): Promise<void> {
    this.watch(this.pc.createDataChannel(channelLabel, { ordered: true }));
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    await this.describe("offer", offer.sdp ?? "");
  }

  private trickle(c: Signal): void {
    if (this.described) this.signal(c);
    else this.held.push(c);
  }

  // describe sends our description, then the candidates gathered so far,
  // once this side's server-reflexive candidate (its public address) is
  // known, gathering is complete, or srflxWait passed. Chromium stops
  // gathering as soon as one candidate pair works: when the first STUN
  // binding request or its answer is lost, a relayed pair can work before
  // the retransmitted binding (250 ms later) brings the public address,
  // which is then never gathered, so the peer never learns it and no
  // direct pair can ever work (seen in the NAT lab with 5% loss: 3 of 40
  // runs between cone NATs stayed on the relay). No pair can work before
  // the peer has our description, so holding it back closes that race;
  // it usually costs one round trip to the STUN server.
  private async describe(type: "offer" | "answer", sdp: string): Promise<void> {
    const start = performance.now();
    if (this.awaitSrflx) {
      let timer = 0;
      await Promise.race([this.srflx, this.dead, new Promise<void>((r) => (timer = window.setTimeout(r, srflxWait)))]);
      clearTimeout(timer);
    }
    if (this.isDead) return;
    console.debug(`ferry: gen ${this.gen}: sending ${type} after ${Math.round(performance.now() - start)} ms of gathering`);
    this.signal({ t: "sdp", type, sdp, gen: this.gen });
    this.described = true;
    const held = this.held;
    this.held = [];
    for (const c of held) this.signal(c);
  }

  // answer applies the sender's offer and sends the answer (receiver).
  async answer(sdp: string): Promise<void> {
    this.pc.ondatachannel = (e) => {
      if (e.channel.label === channelLabel) this.watch(e.channel);
    };
    await this.setRemote({ type: "offer", sdp });
    console.debug(`ferry: gen ${this.gen}: offer applied`);
    const ans = await this.pc.createAnswer();
    await this.pc.setLocalDescription(ans);
    await this.describe("answer", ans.sdp ?? "");
  }

  async setAnswer(sdp: string): Promise<void> {
    await this.setRemote({ type: "answer", sdp });
  }

  private async setRemote(d: RTCSessionDescriptionInit): Promise<void> {
    await this.pc.setRemoteDescription(d);
    this.remoteSet = true;
    const pending = this.pending;
    this.pending = [];
    for (const c of pending) void this.addIce(c);
  }

  addCandidate(s: Signal): void {
    // An empty candidate ends the peer's gathering; Chromium needs no
    // end-of-candidates to connect, so it is not passed on.
    if (!s.candidate) return;
    this.gotCands++;
    const c: RTCIceCandidateInit = { candidate: s.candidate, sdpMid: s.sdpMid ?? null, sdpMLineIndex: s.sdpMLineIndex ?? null };
    if (!this.remoteSet) {
      this.pending.push(c);
      return;
    }
    void this.addIce(c);
  }

  private async addIce(c: RTCIceCandidateInit): Promise<void> {
    try {
      await this.pc.addIceCandidate(c);
    } catch (e) {
      console.debug("ferry: remote candidate refused", e);
    }
  }

  fail(why: string): void {
    if (this.isDead) return;
    this.isDead = true;
    console.debug(`ferry: gen ${this.gen} down (${why}); candidates sent ${this.sentCands}, received ${this.gotCands}, ice ${this.pc.iceConnectionState}, signaling ${this.pc.signalingState}`);
    clearTimeout(this.disconnectTimer);
    clearInterval(this.silenceTimer);
    this.resolveDead(new ConnLost(why));
    for (const st of this.stripeConns.values()) st.close();
    this.stripeConns.clear();
    this.stripes = [];
    try {
      this.dc?.close();
      this.pc.close();
    } catch {
      /* closing twice is fine */
    }
  }

  get failed(): boolean {
    return this.isDead;
  }

  // disconnected: ICE has lost the peer for now.
  get disconnected(): boolean {
    return this.pc.iceConnectionState === "disconnected";
  }

  // Stripe connections by k (PROTOCOL.md §3.4), and the open channels.
  private stripeConns = new Map<number, Stripe>();
  // stripeBytes is each stripe's latest path sample, by k (sample).
  private stripeBytes = new Map<number, PathSample>();
  stripes: RTCDataChannel[] = [];

  stripe(n: number, relay: boolean): void {
    for (let k = 1; k < Math.min(n, maxStripes); k++) {
      if (this.isDead || this.stripeConns.has(k)) continue;
      const st = new Stripe(k, this, relay);
      this.stripeConns.set(k, st);
      st.watch(st.pc.createDataChannel(stripeLabel, { ordered: false }));
      void st.offer().catch((e: unknown) => this.dropStripe(st, `offer failed: ${String(e)}`));
    }
  }

  stripeSignal(s: Signal): void {
    const k = s.stripe ?? 0;
    if (this.isDead || s.t !== "sdp" || k < 1 || k >= maxStripes) return;
    const st = this.stripeConns.get(k);
    if (s.type === "answer") {
      st?.pc.setRemoteDescription({ type: "answer", sdp: s.sdp ?? "" }).catch(() => this.dropStripe(st, "bad answer"));
      return;
    }
    if (st) return; // an offer for a stripe we have: a repeat
    // An offer with relay candidates stripes a relayed generation.
    const nst = new Stripe(k, this, relayedStripeOffer(s.sdp ?? ""));
    this.stripeConns.set(k, nst);
    nst.pc.ondatachannel = (e) => {
      if (e.channel.label === stripeLabel) nst.watch(e.channel);
    };
    void nst.answer(s.sdp ?? "").catch((e: unknown) => this.dropStripe(nst, `answer failed: ${String(e)}`));
  }

  // stripeConfig is a stripe connection's. A direct generation's stripes
  // go direct: STUN servers only. A relayed one's (relay, or this peer is
  // relay-only) also get the TURN servers' UDP URLs: one allocation per
  // stripe and peer, which the relay's allocations per link must leave
  // room for (PROTOCOL.md §3.4).
  stripeConfig(relay: boolean): RTCConfiguration {
    relay ||= this.relayOnly;
    const keep = (u: string) => stripeKeepsIceUrl(u, relay);
    const iceServers = this.iceServers
      .map((s) => ({ ...s, urls: (Array.isArray(s.urls) ? s.urls : [s.urls]).filter(keep) }))
      .filter((s) => s.urls.length > 0);
    return { iceServers, iceTransportPolicy: this.relayOnly ? "relay" : "all" };
  }
  sendStripe(s: Signal): void {
    if (!this.isDead) this.signal({ ...s, gen: this.gen });
  }
  stripeMessage(st: Stripe, b: ArrayBuffer): void {
    // A stripe carries CHUNK frames only, from the sender (who offered it).
    if (st.offered || new Uint8Array(b)[0] !== frameChunk) {
      this.fail(`stripe ${st.k}: a frame other than the sender's CHUNK`);
      return;
    }
    this.deliver(b);
  }
  stripeOpened(st: Stripe, dc: RTCDataChannel): void {
    if (this.isDead) return;
    console.debug(`ferry: gen ${this.gen}: stripe ${st.k} open`);
    this.stripes.push(dc);
  }
  // dropStripe: a stripe that never opened is dropped; one that was open
  // may have had chunks in flight, so the generation ends and the next
  // resumes from what was committed (simpler than resending them here).
  dropStripe(st: Stripe, why: string): void {
    if (this.isDead || this.stripeConns.get(st.k) !== st) return;
    if (st.opened) {
      this.fail(`stripe ${st.k} lost (${why})`);
      return;
    }
    console.debug(`ferry: gen ${this.gen}: stripe ${st.k} dropped (${why})`);
    this.stripeConns.delete(st.k);
    st.close();
  }

  // sample: the path of the main connection's selected pair (null once
  // it is closed), and the bytes per path of every connection of the
  // generation, stripes included: they may carry most of the bytes, and a
  // relayed generation's stripes may move to direct pairs as the main one
  // does.
  async sample(): Promise<PathSample | null> {
    const stripes = [...this.stripeConns.values()];
    const [main, ...rest] = await Promise.allSettled([this.pc, ...stripes.map((st) => st.pc)].map((pc) => pc.getStats()));
    if (main.status === "rejected") return null;
    const out = samplePath(main.value as unknown as StatsLike);
    rest.forEach((r, i) => {
      // A stripe closed meanwhile keeps its last sample.
      if (r.status === "fulfilled") this.stripeBytes.set(stripes[i].k, samplePath(r.value as unknown as StatsLike));
    });
    // Each stripe's latest counts, closed ones too, so the sum only grows.
    for (const b of this.stripeBytes.values()) {
      out.direct += b.direct;
      out.relay += b.relay;
    }
    return out;
  }
}

// Stripe is one stripe connection of a generation (PROTOCOL.md §3.4). It
// does not trickle: its description goes once gathering is complete or
// after stripeDescribeWaitMs, with the candidates gathered so far, which
// costs the signaling server two messages per stripe.
class Stripe {
  readonly pc: RTCPeerConnection;
  dc: RTCDataChannel | null = null;
  opened = false;
  private timer: number;

  constructor(
    readonly k: number,
    private g: PeerGeneration,
    relay: boolean,
  ) {
    this.pc = new RTCPeerConnection(g.stripeConfig(relay));
    this.pc.onconnectionstatechange = () => {
      const s = this.pc.connectionState;
      if (s === "failed" || s === "closed") g.dropStripe(this, `peer connection ${s}`);
    };
    this.timer = window.setTimeout(() => {
      if (!this.opened) g.dropStripe(this, "not open in time");
    }, stripeConnect);
  }

  watch(dc: RTCDataChannel): void {
    dc.binaryType = "arraybuffer";
    this.dc = dc;
    dc.onmessage = (e) => this.g.stripeMessage(this, e.data as ArrayBuffer);
    dc.onopen = () => this.open(dc);
    dc.onclose = () => this.g.dropStripe(this, "data channel closed");
    if (dc.readyState === "open") this.open(dc);
  }

  private open(dc: RTCDataChannel): void {
    if (this.opened) return;
    this.opened = true;
    clearTimeout(this.timer);
    this.g.stripeOpened(this, dc);
  }

  offered = false;

  async offer(): Promise<void> {
    this.offered = true;
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await this.describe("offer");
  }

  async answer(sdp: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: "offer", sdp });
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await this.describe("answer");
  }

  private async describe(type: "offer" | "answer"): Promise<void> {
    if (this.pc.iceGatheringState !== "complete") {
      let timer = 0;
      await new Promise<void>((r) => {
        timer = window.setTimeout(r, stripeDescribeWaitMs);
        this.pc.onicegatheringstatechange = () => {
          if (this.pc.iceGatheringState === "complete") r();
        };
      });
      clearTimeout(timer);
    }
    const sdp = this.pc.localDescription?.sdp ?? "";
    this.g.sendStripe({ t: "sdp", type, sdp, stripe: this.k });
  }

  close(): void {
    clearTimeout(this.timer);
    try {
      this.dc?.close();
      this.pc.close();
    } catch {
      /* closing twice is fine */
    }
  }
}
