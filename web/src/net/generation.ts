// A connection generation (PROTOCOL.md §3.4) is one RTCPeerConnection and
// its data channel "ferry". The sender offers, the receiver answers;
// candidates trickle sealed, tagged with the generation.
import { ConnLost } from "../protocol/errors";
import type { IceServer, Signal } from "../protocol/signal";
import { samplePath, type PathSample, type StatsLike } from "./path";

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
    iceServers: IceServer[],
    relayOnly: boolean,
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

  private watch(dc: RTCDataChannel): void {
    dc.binaryType = "arraybuffer";
    this.dc = dc;
    dc.onmessage = (e) => {
      this.heard = performance.now();
      this.silent = false;
      const b = e.data as ArrayBuffer;
      if (this.consumer) this.consumer(b);
      else this.early.push(b);
    };
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

  // sample reads the selected candidate pair's path and the bytes per
  // path from the connection's stats (null once it is closed).
  async sample(): Promise<PathSample | null> {
    try {
      return samplePath((await this.pc.getStats()) as unknown as StatsLike);
    } catch {
      return null;
    }
  }
}
