// SendFlow is the whole sending side: ticket, pairing, handshake and resume
// session; the driver runs the connection generations, which the sender
// offers, and the transfer over them.
import { initBlake3 } from "../crypto/blake3";
import type { Generation } from "../net/generation";
import { PathMeter } from "../net/path";
import { Session, waitPaired } from "../net/session";
import { SignalingConn } from "../net/signaling";
import { featureStripes } from "../protocol/constants_gen";
import { FerryError } from "../protocol/errors";
import { agent, features, reportNames } from "../protocol/signal";
import { linkFor, newSecret } from "../protocol/ticket";
import { Offerer, onSession, type Driver, type Flow } from "./driver";
import { TooLarge } from "./errors";
import type { Progress } from "./progress";
import { Sender, type Source } from "./sender";
import { WorkerClient } from "./worker_client";

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

export class SendFlow implements Flow {
  readonly session: Session;
  private worker = new WorkerClient();
  readonly sender: Sender;
  private driver: Driver;
  // meter follows the path of the current connection (badge and report).
  readonly meter: PathMeter;

  constructor(
    sources: Source[],
    private base: string,
    relayOnly: () => boolean,
    private ev: SendEvents,
  ) {
    this.session = new Session("S", base);
    this.sender = new Sender(sources, this.worker);
    this.meter = new PathMeter((p) => this.ev.path(p));
    this.driver = onSession(this.session, relayOnly, new Offerer(), this, this.meter);
    this.sender.canStripe = () => this.driver.peerHas(featureStripes);
  }

  get totalSize(): number {
    return this.sender.man.totalSize;
  }

  // current is the current connection generation.
  get current(): Generation | null {
    return this.driver.current;
  }

  async run(): Promise<void> {
    try {
      await this.driver.run();
    } finally {
      this.session.close();
      this.worker.terminate();
    }
  }

  cancel(): void {
    this.driver.cancel();
  }

  async start(race: <T>(p: Promise<T>) => Promise<T>): Promise<void> {
    const s = this.session;
    await initBlake3(); // roots are computed on the page
    const sig = await SignalingConn.open(this.base);
    s.sig = sig;
    sig.send({ type: "create" });
    const created = await race(sig.expect("created"));
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
    await race(s.waiting(waitPaired(sig))).catch((e: unknown) => {
      // The server deletes the ticket of a sender it lost.
      if (e instanceof FerryError && e.outcome === "failed" && e.code < 4000) {
        throw new FerryError("The connection to the server was lost, so the link no longer works. Check your connection and start over to get a new link.");
      }
      throw e;
    });
    this.ev.paired();
    const keys = await race(s.handshake(sig, secret, id));
    this.ev.phrase(keys.phrase);
    // Register the resume session before anything can break (§2.4).
    sig.send({ type: "session", session: keys.sessionId });
    await race(sig.expect("session"));
    s.attach(sig, keys, created.iceServers);
    void s.signal({ t: "info", agent, features });
  }

  transfer(g: Generation, dc: RTCDataChannel): Promise<void> {
    return this.sender.run(g, dc, this.ev.progress);
  }

  connected(path: string, gen: number): void {
    this.ev.connected(path, gen);
  }

  reconnecting(): void {
    this.ev.reconnecting();
  }

  // auditNames: the operator records file names (created.auditNames);
  // only then do reports name the files.
  private auditNames = false;

  report(err: FerryError | null): void {
    // Nothing was offered.
    if (err instanceof TooLarge) return;
    const files = this.sender.man.files;
    this.session.send({
      type: "report",
      path: this.meter.reported,
      bytes: err ? this.sender.sentBytes : this.sender.man.totalSize,
      outcome: err?.outcome ?? "completed",
      files: files.length,
      ...(this.auditNames ? { names: reportNames(files.map((f) => f.path)) } : {}),
    });
  }
}
