// SendFlow is the whole sending side: ticket, pairing, handshake, resume
// session, connection generations and the transfer itself.
import { initBlake3 } from "../crypto/blake3";
import { Link } from "../net/link";
import { PathMeter } from "../net/path";
import { Session, waitPaired } from "../net/session";
import { SignalingConn } from "../net/signaling";
import { agent, features, reportNames, type Signal } from "../protocol/signal";
import { linkFor, newSecret } from "../protocol/ticket";
import { ConnLost, FerryError, TooLarge, canceledByPeer, canceledByUs, internal } from "./errors";
import type { Progress } from "./progress";
import { Sender, type Source } from "./sender";
import { WorkerClient } from "./worker_client";
import { leave } from "./leave";
import { backoff, connectTimeout, reconnectFor, until } from "./timing";

export interface SendEvents {
  link(link: string, expires: number): void;
  paired(): void;
  phrase(words: string[]): void;
  connected(path: string, gen: number): void;
  // path: the connection moved to another path (direct or relay).
  path(path: string): void;
  reconnecting(): void;
  progress(p: Progress): void;
}

export class SendFlow {
  readonly session: Session;
  private worker = new WorkerClient();
  readonly sender: Sender;
  link: Link | null = null;
  private stop: ((e: FerryError) => void) | null = null;
  private stopped: Promise<FerryError>;
  // meter follows the path of the current connection (badge and report).
  readonly meter: PathMeter;

  constructor(
    sources: Source[],
    private base: string,
    private relayOnly: () => boolean,
    private ev: SendEvents,
  ) {
    this.session = new Session("S", base);
    this.sender = new Sender(sources, this.worker);
    this.meter = new PathMeter((p) => this.ev.path(p));
    this.stopped = new Promise((r) => (this.stop = r));
  }

  get totalSize(): number {
    return this.sender.man.totalSize;
  }

  async run(): Promise<void> {
    try {
      await this.transfer();
      // The path at the end, and the bytes of the last second.
      await this.meter.sample();
      this.meter.stop();
      this.report("completed", this.sender.man.totalSize);
      void this.session.signal({ t: "bye", reason: "done" });
      // Give the receiver a moment to report and say goodbye before we
      // close (closing first would cut its signaling connection).
      await until(this.byeDone, 3000);
    } catch (e) {
      const err = internal(e);
      if (!(err instanceof TooLarge)) this.report(err.outcome, this.sender.sentBytes);
      await leave(this.session, this.link, err, this.stopReason, this.peerBye);
      throw err;
    } finally {
      this.close();
    }
  }

  private byeDone: Promise<unknown> = new Promise(() => {});
  private byeSeen!: () => void;
  private peerBye: Promise<void> = new Promise((r) => (this.byeSeen = r));

  private async transfer(): Promise<void> {
    const s = this.session;
    await initBlake3(); // roots are computed on the page
    const sig = await SignalingConn.open(this.base);
    s.sig = sig;
    sig.send({ type: "create" });
    const created = await this.race(sig.expect("created"));
    // Test hook: ferryTest.ignoreMaxBytes offers anyway, so the tests can
    // check that the receiver refuses.
    const ignore = (globalThis as { ferryTest?: { ignoreMaxBytes?: boolean } }).ferryTest?.ignoreMaxBytes === true;
    if (created.maxBytes && this.sender.man.totalSize > created.maxBytes && !ignore) {
      throw new TooLarge(this.sender.man.totalSize, created.maxBytes);
    }
    this.auditNames = created.auditNames === true;
    const secret = newSecret();
    const id = created.id ?? "";
    this.ev.link(linkFor(this.base, { id, secret }), created.expires ?? 0);
    await this.race(s.waiting(waitPaired(sig))).catch((e: unknown) => {
      // The server deletes the ticket of a sender it lost.
      if (e instanceof FerryError && e.outcome === "failed" && e.code < 4000) {
        throw new FerryError("The connection to the server was lost, so the link no longer works. Check your connection and start over to get a new link.");
      }
      throw e;
    });
    this.ev.paired();
    const keys = await this.race(s.handshake(sig, secret, id));
    this.ev.phrase(keys.phrase);
    // Register the resume session before anything can break (§2.4).
    sig.send({ type: "session", session: keys.sessionId });
    await this.race(sig.expect("session"));
    let byeDone!: () => void;
    this.byeDone = new Promise<void>((r) => (byeDone = r));
    s.onSignal = (m) => this.onSignal(m, byeDone);
    s.onDown = (err) => {
      // Codes after which no reconnection can help.
      if (err.code === 4007 || err.code === 4011 || err.code === 4014) this.stop?.(err.code === 4011 ? canceledByPeer() : err);
      // Signaling lost while ICE has lost the peer too: the network
      // changed under both, and the connection will not come back either.
      // Give it up now rather than after ICE's grace, and resume.
      else if (this.link?.disconnected) this.link.fail("signaling lost and ICE disconnected");
    };
    s.attach(sig, keys, created.iceServers);
    void s.signal({ t: "info", agent, features });

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
        } catch (e) {
          if (e instanceof FerryError && (e.code === 4004 || e.code === 4007 || e.code === 4011)) throw e;
          if (this.isStopped) throw e;
          lostAt ||= performance.now();
          await this.race(backoff(lostAt));
          continue;
        }
      }
      gen++;
      console.debug(`ferry: offering connection generation ${gen}`);
      const link = new Link(gen, s.iceServers, this.relayOnly(), (m) => void s.signal(m));
      // The peer went silent: if the network changed, the signaling
      // WebSocket is dead too, and the sooner that is known the sooner the
      // session resumes on a new one.
      link.onSilent = () => void s.probe();
      link.onDisconnected = () => {
        if (!s.connected) link.fail("ICE disconnected and signaling lost");
      };
      this.link = link;
      let dc: RTCDataChannel;
      try {
        await link.offer().catch((e) => Promise.reject(link.failed ? new ConnLost("closed while offering") : e));
        dc = await this.race(
          s.waiting(
            Promise.race([
              link.open,
              link.dead.then((e) => Promise.reject(e)),
              // The answer comes over signaling: without it, resume first.
              s.down().then(() => Promise.reject(new ConnLost("signaling lost while connecting"))),
              timeoutLost(connectTimeout),
            ]),
          ),
        );
      } catch (e) {
        link.fail("not connected");
        if (!(e instanceof ConnLost)) throw e;
        lostAt ||= performance.now();
        this.ev.reconnecting();
        void s.probe();
        continue;
      }
      this.ev.connected(await this.meter.follow(link), gen);
      lostAt = 0;
      try {
        await this.race(this.sender.run(link, dc, this.ev.progress));
        return;
      } catch (e) {
        // A fatal error or cancel keeps the link up for leave().
        if (!(e instanceof ConnLost)) throw e;
        link.fail("transfer interrupted");
        this.meter.stop();
        console.debug(`ferry: generation ${gen} lost: ${e.message}`);
        lostAt = performance.now();
        this.ev.reconnecting();
        // A lost path often means a new network, which leaves the
        // signaling WebSocket dead without a word: check it.
        void s.probe();
      }
    }
  }

  private onSignal(m: Signal, byeDone: () => void): void {
    const l = this.link;
    if (m.t !== "cand") console.debug(`ferry: signal ${m.t} ${m.type ?? m.reason ?? ""} gen ${m.gen ?? "-"}`);
    switch (m.t) {
      case "sdp":
        if (m.type === "answer" && l && m.gen === l.gen) l.setAnswer(m.sdp ?? "").catch(() => l.fail("bad answer"));
        return;
      case "cand":
        if (l && m.gen === l.gen) l.addCandidate(m);
        return;
      case "restart":
        // The receiver lost generation m.gen (0: it has none). A link still
        // connecting is the answer already on its way, as in the Go peer.
        if (l && l.dc?.readyState === "open" && (!m.gen || m.gen >= l.gen)) l.fail("the receiver asked to reconnect");
        return;
      case "bye":
        this.byeSeen();
        if (m.reason === "canceled") this.stop?.(canceledByPeer());
        else byeDone();
        return;
    }
  }

  private get isStopped(): boolean {
    return this.stopReason !== null;
  }
  private stopReason: FerryError | null = null;

  // race ends p early when the flow is stopped (cancel, fatal signal).
  private race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.stopped.then((e) => Promise.reject(e))]);
  }

  cancel(): void {
    this.stopReason = canceledByUs();
    this.stop?.(this.stopReason);
  }

  // auditNames: the operator records file names (created.auditNames);
  // only then do reports name the files.
  private auditNames = false;

  private report(outcome: string, bytes: number): void {
    const files = this.sender.man.files;
    this.session.send({
      type: "report",
      path: this.meter.reported,
      bytes,
      outcome,
      files: files.length,
      ...(this.auditNames ? { names: reportNames(files.map((f) => f.path)) } : {}),
    });
  }

  private close(): void {
    this.meter.stop();
    this.link?.fail("closed");
    this.session.close();
    this.worker.terminate();
  }
}

function timeoutLost(ms: number): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new ConnLost("no connection in time")), ms));
}
