// HELLO/CONFIRM key confirmation and sealed signaling (PROTOCOL.md §3) with
// Web Crypto: HKDF-SHA256, HMAC-SHA256, AES-256-GCM. Byte-exact with the Go
// peer (testdata/vectors/handshake.json).
import { b64urlEncode } from "../protocol/b64";
import type { Role } from "../protocol/signal";
import { words } from "./words";
import { handshakeVersion, maxPlaintext, nonceLen, typeConfirm, typeHello, typeSealed } from "../protocol/constants_gen";

export { handshakeVersion, maxPlaintext, nonceLen, typeConfirm, typeHello, typeSealed } from "../protocol/constants_gen";
const sealedHdr = 9;
const tagLen = 16;

export class HandshakeError extends Error {
  constructor(
    readonly kind: "malformed" | "version" | "role" | "wrong-key" | "decrypt" | "order" | "too-large",
    message: string,
  ) {
    super(message);
  }
}

const enc = new TextEncoder();

export interface Hello {
  role: Role;
  nonce: Uint8Array;
}

export function newHello(role: Role): Hello {
  return { role, nonce: crypto.getRandomValues(new Uint8Array(nonceLen)) };
}

export function encodeHello(h: Hello): Uint8Array {
  const b = new Uint8Array(3 + nonceLen);
  b[0] = typeHello;
  b[1] = handshakeVersion;
  b[2] = h.role.charCodeAt(0);
  b.set(h.nonce, 3);
  return b;
}

export function parseHello(b: Uint8Array): Hello {
  if (b.length !== 3 + nonceLen || b[0] !== typeHello) throw new HandshakeError("malformed", "malformed hello");
  if (b[1] !== handshakeVersion) throw new HandshakeError("version", "the other side speaks another handshake version");
  const r = String.fromCharCode(b[2]!);
  if (r !== "S" && r !== "R") throw new HandshakeError("malformed", "malformed hello role");
  return { role: r, nonce: b.slice(3) };
}

export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface Keys {
  role: Role;
  phrase: string[];
  sessionId: string;
  sessionSecret: Uint8Array;
  confirm: Uint8Array; // our CONFIRM frame
  checkConfirm(frame: Uint8Array): Promise<void>;
  seal(plaintext: Uint8Array): Promise<Uint8Array>;
  open(frame: Uint8Array): Promise<Uint8Array>;
}

// derive runs HKDF over the two HELLOs (§3.1). ikm is the ticket secret or
// the session secret; ctx the ticket id or the session id.
export async function derive(ikm: Uint8Array, ctx: string, local: Hello, remote: Hello): Promise<Keys> {
  if (local.role === remote.role) throw new HandshakeError("role", "the other side claims our role");
  const [s, r] = local.role === "S" ? [local, remote] : [remote, local];
  const salt = concat(enc.encode("ferry/1"), s.nonce, r.nonce);
  const base = await crypto.subtle.importKey("raw", concat(ikm), "HKDF", false, ["deriveBits"]);
  const k = async (label: string, n: number): Promise<Uint8Array<ArrayBuffer>> => {
    const info = concat(enc.encode(`ferry/1 ${label}`), new Uint8Array([0]), enc.encode(ctx));
    return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, base, n * 8));
  };
  const s2r = await k("seal s2r", 32);
  const r2s = await k("seal r2s", 32);
  const confirmKey = await crypto.subtle.importKey("raw", await k("confirm", 32), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const phraseBytes = await k("phrase", 4);
  const sessionId = b64urlEncode(await k("session id", 16));
  const sessionSecret = await k("session secret", 32);
  const aes = (raw: Uint8Array<ArrayBuffer>) => crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  const sendKey = await aes(local.role === "S" ? s2r : r2s);
  const recvKey = await aes(local.role === "S" ? r2s : s2r);
  const mac = async (role: Role) =>
    new Uint8Array(await crypto.subtle.sign("HMAC", confirmKey, concat(enc.encode("ferry/1 confirm"), new Uint8Array([role.charCodeAt(0)]))));
  const other: Role = local.role === "S" ? "R" : "S";
  const confirm = concat(new Uint8Array([typeConfirm]), await mac(local.role));
  const expected = await mac(other);
  let sendCtr = 0;
  let recvNext = 0;
  return {
    role: local.role,
    phrase: Array.from(phraseBytes, (b) => words[b]!),
    sessionId,
    sessionSecret,
    confirm,
    async checkConfirm(frame) {
      if (frame.length !== 33 || frame[0] !== typeConfirm) throw new HandshakeError("malformed", "malformed confirm");
      let diff = 0;
      for (let i = 0; i < 32; i++) diff |= frame[i + 1]! ^ expected[i]!;
      if (diff !== 0) throw new HandshakeError("wrong-key", "key confirmation failed");
    },
    async seal(plaintext) {
      if (plaintext.length > maxPlaintext) throw new HandshakeError("too-large", "sealed message too large");
      const hdr = header(sendCtr);
      const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce(sendCtr), additionalData: hdr }, sendKey, concat(plaintext));
      sendCtr++;
      return concat(hdr, new Uint8Array(ct));
    },
    async open(frame) {
      if (frame.length < sealedHdr + tagLen || frame[0] !== typeSealed) throw new HandshakeError("malformed", "malformed sealed frame");
      if (frame.length > sealedHdr + maxPlaintext + tagLen) throw new HandshakeError("too-large", "sealed message too large");
      const v = new DataView(frame.buffer, frame.byteOffset, sealedHdr);
      const ctr = v.getBigUint64(1);
      if (ctr !== BigInt(recvNext)) throw new HandshakeError("order", "sealed message out of order");
      let pt: ArrayBuffer;
      try {
        pt = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: nonce(recvNext), additionalData: frame.slice(0, sealedHdr) },
          recvKey,
          frame.slice(sealedHdr),
        );
      } catch {
        throw new HandshakeError("decrypt", "sealed message failed authentication");
      }
      recvNext++;
      return new Uint8Array(pt);
    },
  };
}

function header(ctr: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(sealedHdr);
  b[0] = typeSealed;
  new DataView(b.buffer).setBigUint64(1, BigInt(ctr));
  return b;
}

function nonce(ctr: number): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, BigInt(ctr));
  return n;
}
