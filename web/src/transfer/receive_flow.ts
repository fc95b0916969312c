// ReceiveFlow is the whole receiving side: join, handshake and resume
// session; the driver runs the connection generations, which the receiver
// answers, and the transfer over them.
import type { Generation } from "../net/generation";
import { PathMeter } from "../net/path";
import { Session, waitPaired } from "../net/session";
import { SignalingConn } from "../net/signaling";
import type { Manifest } from "../protocol/control";
import type { FerryError } from "../protocol/errors";
import { agent, features, reportNames } from "../protocol/signal";
import type { Ticket } from "../protocol/ticket";
import { Answerer, onSession, type Driver, type Flow } from "./driver";
import type { Progress } from "./progress";
import { Receiver, type Sink } from "./receiver";
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

export class ReceiveFlow implements Flow {
  readonly session: Session;
  readonly worker = new WorkerClient();
  receiver: Receiver | null = null;
  private driver: Driver;
  // meter follows the path of the current connection (badge and report).
  readonly meter: PathMeter;

  constructor(
    private base: string,
    private ticket: Ticket,
    relayOnly: () => boolean,
    private ev: ReceiveEvents,
  ) {
    this.session = new Session("R", base);
    this.meter = new PathMeter((p) => this.ev.path(p));
    this.driver = onSession(this.session, relayOnly, new Answerer(), this, this.meter);
  }

  get refetched(): number {
    return this.receiver?.refetched ?? 0;
  }

  // current is the current connection generation.
  get current(): Generation | null {
    return this.driver.current;
  }

  get generation(): number {
    return this.current?.gen ?? 0;
  }

  async run(): Promise<void> {
    try {
      await this.driver.run();
    } finally {
      this.session.close();
    }
  }

  cancel(): void {
    this.driver.cancel();
  }

  async start(race: <T>(p: Promise<T>) => Promise<T>): Promise<void> {
    const s = this.session;
    const sig = await SignalingConn.open(this.base);
    s.sig = sig;
    sig.send({ type: "join", id: this.ticket.id });
    const joined = await race(sig.expect("joined"));
    this.auditNames = joined.auditNames === true;
    await race(waitPaired(sig));
    this.ev.paired();
    const keys = await race(s.handshake(sig, this.ticket.secret, this.ticket.id));
    this.ev.phrase(keys.phrase);
    s.attach(sig, keys, joined.iceServers);
    void s.signal({ t: "info", agent, features });
    this.receiver = new Receiver(this.worker, (m) => this.ev.manifest(m), joined.maxBytes ?? 0);
  }

  transfer(g: Generation, dc: RTCDataChannel): Promise<void> {
    return this.receiver!.run(g, dc, this.ev.progress);
  }

  connected(path: string, gen: number): void {
    this.ev.connected(path, gen);
  }

  reconnecting(): void {
    this.ev.reconnecting();
  }

  // auditNames: see SendFlow.report.
  private auditNames = false;

  report(err: FerryError | null): void {
    const r = this.receiver;
    if (err && r?.man && !r.complete) r.abort();
    const man = r?.man;
    if (!man) return;
    const bytes = err ? r.doneBytes : man.totalSize;
    const names = this.auditNames ? reportNames(man.files.map((f) => f.path)) : undefined;
    this.session.send({ type: "report", path: this.meter.reported, bytes, outcome: err?.outcome ?? "completed", files: man.files.length, ...(names ? { names } : {}) });
  }
}
