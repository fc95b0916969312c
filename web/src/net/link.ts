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

  private watch(dc: RTCDataChannel): void {
    dc.binaryType = "arraybuffer";
    this.dc = dc;
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
    const ans = await this.pc.createAnswer();
    await this.pc.setLocalDescription(ans);
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
    for (const c of pending) await this.addIce(c);
  }

  addCandidate(s: Signal): void {
    if (s.candidate === undefined) return;
    const c: RTCIceCandidateInit = { candidate: s.candidate, sdpMid: s.sdpMid ?? null, sdpMLineIndex: s.sdpMLineIndex ?? null };
    if (!this.remoteSet) {
      this.pending.push(c);
      return;
    }
    void this.addIce(c);
  }

  private async addIce(c: RTCIceCandidateInit): Promise<void> {
    try {
      // An empty candidate ends gathering on the other side.
      await this.pc.addIceCandidate(c.candidate === "" ? undefined : c);
    } catch (e) {
      console.debug("ferry: remote candidate refused", e);
    }
  }

  fail(why: string): void {
    if (this.isDead) return;
    this.isDead = true;
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
