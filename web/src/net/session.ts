// Session runs the HELLO/CONFIRM handshake over a signaling connection and
// then carries sealed peer signals (PROTOCOL.md §3). It survives the loss of
// its WebSocket: resume() resumes with the session id and secret (§2.4).
import { derive, encodeHello, HandshakeError, newHello, parseHello, type Keys } from "../crypto/handshake";
import type { IceServer, Role, ServerMessage, Signal } from "../protocol/signal";
import { FerryError } from "../protocol/errors";
import { SignalingConn } from "./signaling";

const enc = new TextEncoder();
const resumeAttemptTimeout = 15_000;
const dec = new TextDecoder();
// probeEvery is how often a page waiting for the other side checks that
// its signaling connection still answers.
const probeEvery = 15_000;

// SignalListener gets the peer's sealed signals and the end of each
// signaling connection (err is why).
export interface SignalListener {
  signal(s: Signal): void;
  down(err: FerryError): void;
}

// Signaler is what the connection driver (transfer/driver.ts) uses of a
// session; the unit tests fake it.
export interface Signaler {
  // connected: the current signaling connection is open.
  readonly connected: boolean;
  // signal seals and sends one signal to the peer.
  signal(s: Signal): void;
  // send sends a message to the server.
  send(m: Record<string, unknown>): void;
  // listen adds l until the returned function removes it.
  listen(l: SignalListener): () => void;
  // probe checks the connection still answers (a dead one is ended).
  probe(): void;
  // resume opens a new signaling connection for the session (§2.4).
  resume(): Promise<void>;
}

export class Session implements Signaler {
  sig: SignalingConn | null = null;
  keys: Keys | null = null;
  iceServers: IceServer[] = [];
  sessionId = "";
  sessionSecret: Uint8Array | null = null;
  phrase: string[] = [];
  private listeners = new Set<SignalListener>();
  private sendChain: Promise<void> = Promise.resolve();

  constructor(
    readonly role: Role,
    readonly base: string,
  ) {}

  // handshake proves both sides hold the secret and derives the keys; a
  // mismatch burns the ticket on the server (one guess per link).
  async handshake(sig: SignalingConn, ikm: Uint8Array, ctx: string): Promise<Keys> {
    const hello = newHello(this.role);
    sig.sendFrame(encodeHello(hello) as Uint8Array<ArrayBuffer>);
    let keys: Keys;
    try {
      const peer = parseHello(await sig.nextFrame());
      keys = await derive(ikm, ctx, hello, peer);
      sig.sendFrame(keys.confirm as Uint8Array<ArrayBuffer>);
      await keys.checkConfirm(await sig.nextFrame());
    } catch (e) {
      if (e instanceof HandshakeError && e.kind === "wrong-key") {
        sig.send({ type: "abort", reason: "wrong_key" });
        await Promise.race([sig.closed, new Promise((r) => setTimeout(r, 3000))]);
        sig.close();
        throw new FerryError(
          "The link's secret is wrong, so the link has been closed for safety. Ask the sender for a new link.",
          "failed",
          4007,
        );
      }
      if (e instanceof HandshakeError) {
        sig.close(4000);
        throw new FerryError("The other side does not speak the same protocol version. Make sure both sides use an up-to-date ferry.");
      }
      // A closed connection during the handshake: a wrong secret on the
      // other side closes us with 4007, which this message covers.
      throw e;
    }
    if (!this.sessionId) {
      this.sessionId = keys.sessionId;
      this.sessionSecret = keys.sessionSecret;
      this.phrase = keys.phrase;
    }
    return keys;
  }

  // attach makes sig (confirmed with keys) the current connection and
  // starts delivering the peer's signals.
  attach(sig: SignalingConn, keys: Keys, ice?: IceServer[]): void {
    this.sig = sig;
    this.keys = keys;
    if (ice && ice.length > 0) this.iceServers = ice;
    sig.onIce = (fresh) => (this.iceServers = fresh);
    this.sendChain = Promise.resolve();
    void this.pump(sig, keys);
  }

  private async pump(sig: SignalingConn, keys: Keys): Promise<void> {
    for (;;) {
      let frame: Uint8Array;
      try {
        frame = await sig.nextFrame();
      } catch (e) {
        const err = e instanceof FerryError ? e : new FerryError("The connection to the server was lost.");
        if (this.sig === sig) for (const l of [...this.listeners]) l.down(err);
        return;
      }
      try {
        const s = JSON.parse(dec.decode(await keys.open(frame))) as Signal;
        if (typeof s === "object" && s !== null && typeof s.t === "string") for (const l of [...this.listeners]) l.signal(s);
      } catch (e) {
        console.error("ferry: bad sealed signal", e);
        sig.close(4000);
      }
    }
  }

  // signal seals and sends one signal; sends stay in order so the peer's
  // counters match.
  signal(s: Signal): Promise<void> {
    const sig = this.sig;
    const keys = this.keys;
    if (!sig || !keys) return Promise.resolve();
    const p = this.sendChain.then(async () => {
      const frame = await keys.seal(enc.encode(JSON.stringify(s)));
      if (s.t !== "cand") console.debug(`ferry: sent ${s.t} ${s.type ?? ""} gen ${s.gen ?? "-"} open=${sig.isOpen}`);
      sig.sendFrame(frame as Uint8Array<ArrayBuffer>);
    });
    this.sendChain = p.catch((e) => console.error("ferry: signal not sent", e));
    return this.sendChain;
  }

  listen(l: SignalListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  send(m: Record<string, unknown>): void {
    this.sig?.send(m);
  }

  get connected(): boolean {
    return this.sig?.isOpen ?? false;
  }

  // probe checks that the current signaling connection still answers; one
  // that does not within 5 s is closed, which ends it for down() and the
  // driver resumes the session on a new one (§2.4), as the Go peer does after
  // a lost connection. Without it a page whose network changed (a new
  // public address) would wait on a dead WebSocket for many minutes.
  probe(): Promise<boolean> {
    return this.sig?.probe() ?? Promise.resolve(false);
  }

  // waiting resolves or rejects like p; while p is pending (the page waits
  // for the other side) it probes the signaling connection every 15 s.
  async waiting<T>(p: Promise<T>): Promise<T> {
    const timer = setInterval(() => void this.probe(), probeEvery);
    try {
      return await p;
    } finally {
      clearInterval(timer);
    }
  }

  // resume resumes signaling with the session (after the WebSocket was
  // lost), waits for the peer and runs the handshake with the session secret.
  async resume(): Promise<void> {
    if (!this.sessionSecret) throw new FerryError("The connection to the server was lost.");
    const sig = await SignalingConn.open(this.base);
    // One attempt may not hang: the peer may be gone or slow to come back;
    // the caller retries with backoff.
    const timer = setTimeout(() => sig.close(), resumeAttemptTimeout);
    try {
      sig.send({ type: "resume", session: this.sessionId, role: this.role });
      const resumed: ServerMessage = await sig.expect("resumed");
      await waitPaired(sig);
      const keys = await this.handshake(sig, this.sessionSecret, this.sessionId);
      this.attach(sig, keys, resumed.iceServers);
    } catch (e) {
      sig.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  // down resolves when the current signaling connection ends.
  down(): Promise<unknown> {
    return this.sig?.closed ?? Promise.resolve();
  }

  close(): void {
    const sig = this.sig;
    this.sig = null;
    sig?.close();
  }
}

export async function waitPaired(sig: SignalingConn): Promise<void> {
  for (;;) {
    const m = await sig.nextText();
    if (m.type === "paired") return;
  }
}
