// SignalingConn is one WebSocket to the server (PROTOCOL.md §2): JSON text
// messages with the server, binary frames relayed to and from the peer.
import { closeMessage, signalPath, subprotocol, type IceServer, type ServerMessage } from "../protocol/signal";
import { FerryError } from "../protocol/errors";
import { Inbox } from "./inbox";

// probeTimeout bounds the check that the server still answers (probe).
export const probeTimeout = 5_000;

// keepAliveEvery is how often an open connection probes the server: it shows
// a paired connection is not idle (servers close one whose client sent
// nothing for --signal-idle-timeout, PROTOCOL.md §2) through a long
// transfer, as the Go peer does, and finds a dead one.
const keepAliveEvery = 10 * 60_000;

export class SignalingConn {
  private text = new Inbox<ServerMessage>();
  private frames = new Inbox<Uint8Array>();
  readonly closed: Promise<FerryError>;
  private resolveClosed!: (e: FerryError) => void;
  private closedBy: FerryError | null = null;
  private probing: Promise<boolean> | null = null;
  private answered: (() => void) | null = null;
  // onIce gets the ICE servers of each answer to a probe (fresh TURN
  // credentials).
  onIce: (ice: IceServer[]) => void = () => {};

  private constructor(private ws: WebSocket) {
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      if (typeof e.data === "string") {
        let m: ServerMessage;
        try {
          m = JSON.parse(e.data) as ServerMessage;
        } catch {
          this.close(4000);
          return;
        }
        // The answer to a probe goes to the probe, never to whoever reads
        // the other server messages (waitPaired would swallow it).
        if (m.type === "ice") {
          this.answered?.();
          if (m.iceServers && m.iceServers.length > 0) this.onIce(m.iceServers);
          return;
        }
        this.text.push(m);
      } else {
        this.frames.push(new Uint8Array(e.data as ArrayBuffer));
      }
    };
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const keepAlive = setInterval(() => void this.probe(), keepAliveEvery);
    // Where timers can hold a process open (Node, running the tests), this
    // one must not: the connection's own events do.
    (keepAlive as { unref?: () => void }).unref?.();
    void this.closed.then(() => clearInterval(keepAlive));
    ws.onclose = (e) => {
      this.end(new FerryError(closeMessage(e.code, e.reason), e.code === 4011 ? "canceled" : "failed", e.code, e.reason));
    };
  }

  // end makes the connection closed for its readers, with the first error
  // that closed it.
  private end(err: FerryError): void {
    const why = (this.closedBy ??= err);
    this.text.fail(why);
    this.frames.fail(why);
    this.resolveClosed(why);
  }

  // open connects to the server at base (origin plus path prefix).
  static open(base: string): Promise<SignalingConn> {
    const u = new URL(base.replace(/\/$/, "") + signalPath);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(u.href, subprotocol);
      } catch {
        reject(new FerryError("Cannot reach the ferry server."));
        return;
      }
      ws.onopen = () => resolve(new SignalingConn(ws));
      ws.onerror = () => reject(new FerryError("Cannot reach the ferry server. Check your connection and reload the page."));
      ws.onclose = (e) => reject(new FerryError(closeMessage(e.code, e.reason), "failed", e.code, e.reason));
    });
  }

  get isOpen(): boolean {
    return this.closedBy === null;
  }

  send(m: Record<string, unknown>): void {
    if (this.isOpen && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  sendFrame(b: Uint8Array<ArrayBuffer>): void {
    if (this.isOpen && this.ws.readyState === WebSocket.OPEN) this.ws.send(b);
  }

  // probe checks that the server still answers on this connection: it
  // asks for ICE servers (PROTOCOL.md §2.5) and resolves true with the
  // answer. Pages cannot send WebSocket pings, and after a network change
  // (a new public address) a WebSocket can hang for minutes without an
  // error while everything sent on it is lost. Without an answer within
  // ms the connection is given up: it is closed at once (its readers see
  // it lost, the caller resumes on a new one) and probe resolves false.
  probe(ms = probeTimeout): Promise<boolean> {
    if (!this.isOpen) return Promise.resolve(false);
    this.probing ??= new Promise<boolean>((resolve) => {
      let finished = false;
      const done = (ok: boolean) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        this.answered = null;
        this.probing = null;
        resolve(ok);
      };
      const timer = setTimeout(() => {
        console.debug(`ferry: the server did not answer within ${ms} ms; giving the signaling connection up`);
        this.abandon(new FerryError("The connection to the server was lost."));
      }, ms);
      this.answered = () => done(true);
      void this.closed.then(() => done(false));
      this.send({ type: "ice" });
    });
    return this.probing;
  }

  // expect waits for the next server message, which must be of type want.
  async expect(want: string): Promise<ServerMessage> {
    const m = await this.text.next();
    if (m.type !== want) {
      console.error(`ferry: expected ${want}, got`, m);
      this.close();
      throw new FerryError("The server answered something unexpected. Reload the page and try again.");
    }
    return m;
  }

  nextText(): Promise<ServerMessage> {
    return this.text.next();
  }

  nextFrame(): Promise<Uint8Array> {
    return this.frames.next();
  }

  // close ends the connection at once: its readers do not wait for the
  // server's side of the closing handshake, which never comes over a dead
  // connection.
  close(code = 1000): void {
    this.abandon(new FerryError("Closed.", "canceled", code), code);
  }

  private abandon(err: FerryError, code = 1000): void {
    if (this.closedBy) return;
    this.closedBy = err;
    try {
      this.ws.close(code);
    } catch {
      /* already closed */
    }
    this.end(err);
  }
}
