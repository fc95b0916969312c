// SignalingConn is one WebSocket to the server (PROTOCOL.md §2): JSON text
// messages with the server, binary frames relayed to and from the peer.
import { closeMessage, signalPath, subprotocol, type ServerMessage } from "../protocol/signal";
import { FerryError } from "../transfer/errors";
import { Inbox } from "./inbox";

export class SignalingConn {
  private text = new Inbox<ServerMessage>();
  private frames = new Inbox<Uint8Array>();
  readonly closed: Promise<FerryError>;
  private closedBy: FerryError | null = null;

  private constructor(private ws: WebSocket) {
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      if (typeof e.data === "string") {
        try {
          this.text.push(JSON.parse(e.data) as ServerMessage);
        } catch {
          ws.close(4000);
        }
      } else {
        this.frames.push(new Uint8Array(e.data as ArrayBuffer));
      }
    };
    this.closed = new Promise((resolve) => {
      ws.onclose = (e) => {
        const err = this.closedBy ?? new FerryError(closeMessage(e.code), e.code === 4011 ? "canceled" : "failed", e.code);
        this.closedBy = err;
        this.text.fail(err);
        this.frames.fail(err);
        resolve(err);
      };
    });
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
      ws.onclose = (e) => reject(new FerryError(closeMessage(e.code), "failed", e.code));
    });
  }

  get isOpen(): boolean {
    return this.closedBy === null;
  }

  send(m: Record<string, unknown>): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  sendFrame(b: Uint8Array<ArrayBuffer>): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(b);
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

  close(code = 1000): void {
    if (!this.closedBy) this.closedBy = new FerryError("Closed.", "canceled", code);
    try {
      this.ws.close(code);
    } catch {
      /* already closed */
    }
  }
}
