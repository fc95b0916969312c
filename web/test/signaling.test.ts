// Unit tests of the signaling connection's liveness probe, over a fake
// WebSocket: an answered probe, a connection that no longer answers (given
// up at once, its readers told), and close() not waiting for the server.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SignalingConn } from "../src/net/signaling";

class FakeWS {
  static OPEN = 1;
  static last: FakeWS;
  readyState = 0;
  binaryType = "";
  sent: string[] = [];
  closedWith: number | null = null;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocol: string,
  ) {
    FakeWS.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    }, 0);
  }
  send(d: string): void {
    this.sent.push(d);
  }
  close(code: number): void {
    // A dead connection: no close event comes back.
    this.closedWith = code;
  }
  serverSays(m: object): void {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
}

async function open(): Promise<[SignalingConn, FakeWS]> {
  (globalThis as { WebSocket?: unknown }).WebSocket = FakeWS;
  const sig = await SignalingConn.open("https://ferry.example");
  return [sig, FakeWS.last];
}

test("an answered probe keeps the connection and hands over fresh ICE servers", async () => {
  const [sig, ws] = await open();
  let ice: unknown = null;
  sig.onIce = (s) => (ice = s);
  const p = sig.probe(1000);
  assert.equal(sig.probe(1000), p, "one probe at a time");
  assert.deepEqual(ws.sent.map((s) => JSON.parse(s)), [{ type: "ice" }]);
  ws.serverSays({ type: "ice", iceServers: [{ urls: ["stun:h:3478"] }] });
  ws.serverSays({ type: "paired" });
  assert.equal(await p, true);
  assert.deepEqual(ice, [{ urls: ["stun:h:3478"] }]);
  assert.equal((await sig.nextText()).type, "paired", "the answer is not a server message for the flows");
  assert.ok(sig.isOpen);
  assert.equal(ws.closedWith, null);
});

test("a connection that does not answer is given up at once", async () => {
  const [sig, ws] = await open();
  const frame = sig.nextFrame();
  assert.equal(await sig.probe(20), false);
  assert.equal(sig.isOpen, false);
  assert.notEqual(ws.closedWith, null, "the WebSocket is closed");
  const err = await sig.closed;
  assert.match(err.message, /connection to the server was lost/);
  assert.equal(err.outcome, "failed");
  await assert.rejects(frame, /connection to the server was lost/, "readers are told without waiting for a close event");
  assert.equal(await sig.probe(20), false, "a closed connection fails a probe at once");
});

test("close ends the connection for its readers without the server's close", async () => {
  const [sig] = await open();
  const text = sig.nextText();
  sig.close();
  await assert.rejects(text);
  assert.equal(sig.isOpen, false);
  assert.equal((await sig.closed).code, 1000);
});

test("a 4009 close carries the server's reason", async () => {
  const [sig, ws] = await open();
  ws.onclose?.({ code: 4009, reason: "not allowed from this network" });
  const err = await sig.closed;
  assert.equal(err.code, 4009);
  assert.equal(err.reason, "not allowed from this network");
  assert.match(err.message, /from your network/);
});
