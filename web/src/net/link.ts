// Link is one connection generation (PROTOCOL.md §3.4): an
// RTCPeerConnection and its data channel "ferry". The sender offers, the
// receiver answers; candidates trickle sealed, tagged with the generation.
import type { IceServer, Signal } from "../protocol/signal";
import { ConnLost } from "../transfer/errors";

const disconnectGrace = 4000;
export const channelLabel = "ferry";

export class Link {
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

  constructor(
    readonly gen: number,
    iceServers: IceServer[],
    relayOnly: boolean,
    private signal: (s: Signal) => void,
  ) {
    this.open = new Promise((r) => (this.resolveOpen = r));
    this.dead = new Promise((r) => (this.resolveDead = r));
    this.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relayOnly ? "relay" : "all" });
    this.pc.onicecandidate = (e) => {
      if (this.isDead) return;
      if (!e.candidate) {
        this.signal({ t: "cand", candidate: "", gen });
        return;
      }
      const c = e.candidate.toJSON();
      this.sentCands++;
      this.signal({ t: "cand", candidate: c.candidate ?? "", sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null, gen });
    };
    this.pc.onconnectionstatechange = () => {
      const s = this.pc.connectionState;
      if (s === "failed" || s === "closed") this.fail(`peer connection ${s}`);
    };
    this.pc.oniceconnectionstatechange = () => {
      const s = this.pc.iceConnectionState;
      if (s === "disconnected") {
        if (!this.disconnectTimer) this.disconnectTimer = window.setTimeout(() => this.fail("no traffic for 4 s"), disconnectGrace);
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
      const b = e.data as ArrayBuffer;
      if (this.consumer) this.consumer(b);
      else this.early.push(b);
    };
    dc.onopen = () => this.resolveOpen(dc);
    dc.onclose = () => this.fail("data channel closed");
    if (dc.readyState === "open") this.resolveOpen(dc);
  }

  // offer creates the data channel and sends the offer (sender).
  async offer(): Promise<void> {
    this.watch(this.pc.createDataChannel(channelLabel, { ordered: true }));
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    this.signal({ t: "sdp", type: "offer", sdp: offer.sdp ?? "", gen: this.gen });
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
    console.debug(`ferry: gen ${this.gen}: sending answer`);
    this.signal({ t: "sdp", type: "answer", sdp: ans.sdp ?? "", gen: this.gen });
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

  // path tells from the selected candidate pair whether the bytes go
  // through a TURN relay.
  async path(): Promise<"direct" | "relay" | ""> {
    let stats: RTCStatsReport;
    try {
      stats = await this.pc.getStats();
    } catch {
      return "";
    }
    let pairId = "";
    stats.forEach((r) => {
      if (r.type === "transport" && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId as string;
    });
    let pair = pairId ? stats.get(pairId) : undefined;
    if (!pair) {
      stats.forEach((r) => {
        if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") pair = r;
      });
    }
    if (!pair) return "";
    const local = stats.get(pair.localCandidateId as string);
    const remote = stats.get(pair.remoteCandidateId as string);
    return local?.candidateType === "relay" || remote?.candidateType === "relay" ? "relay" : "direct";
  }
}
