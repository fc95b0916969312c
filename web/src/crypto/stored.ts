// Stored transfers (PROTOCOL.md §6): keys from the link's secret, the files
// as one stream of AES-256-GCM records, and a sealed manifest. Byte-exact
// with the Go implementation (testdata/vectors/stored.json).
import { b64urlEncode } from "../protocol/b64";
import { checkManifest, ManifestError, type FileEntry, type Manifest } from "../protocol/control";
import { concat } from "./handshake";

export const recordSize = 64 << 10;
export const overhead = 16;
export const sealedRecordSize = recordSize + overhead;
export const saltLen = 16;
export const maxManifest = 64 << 20;
const manifestMagic = "FSM1";
const nonceLen = 12;
const manifestHead = manifestMagic.length + saltLen + nonceLen;
const manifestPad = 1024;
const label = "ferry/1 stored";

export class StoredError extends Error {
  constructor(
    readonly kind: "record" | "truncated" | "trailing" | "manifest" | "secret",
    message: string,
  ) {
    super(message);
  }
}

const enc = new TextEncoder();

// records is how many records a stream of total bytes has: at least one.
export function records(total: number): number {
  return total <= 0 ? 1 : Math.ceil(total / recordSize);
}

export function sealedSize(total: number): number {
  return total + records(total) * overhead;
}

function recordLen(total: number, i: number): number {
  return i === records(total) - 1 ? total - i * recordSize : recordSize;
}

function checkSecret(secret: Uint8Array, id: string): void {
  if (secret.length !== 16 || id === "" || id.length > 64) throw new StoredError("secret", "bad secret or id");
}

async function hkdf(secret: Uint8Array, salt: Uint8Array, name: string, id: string, n: number): Promise<Uint8Array<ArrayBuffer>> {
  const base = await crypto.subtle.importKey("raw", concat(secret), "HKDF", false, ["deriveBits"]);
  const info = concat(enc.encode(`${label} ${name}`), new Uint8Array([0]), enc.encode(id));
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: concat(salt), info }, base, n * 8));
}

// readToken is what a receiver shows the server to fetch a stored transfer.
export async function readToken(secret: Uint8Array): Promise<string> {
  checkSecret(secret, "-");
  return b64urlEncode(await hkdf(secret, enc.encode(label), "read", "", 16));
}

export interface StoredFile extends FileEntry {
  root: string;
}

export interface StoredManifest extends Omit<Manifest, "t" | "files"> {
  t: "stored";
  recordSize: number;
  files: StoredFile[];
}

export interface StoredKeys {
  salt: Uint8Array;
  sealRecord(plain: Uint8Array, i: number, final: boolean): Promise<Uint8Array>;
  openRecord(sealed: Uint8Array, i: number, final: boolean): Promise<Uint8Array>;
  sealManifest(m: StoredManifest, nonce?: Uint8Array): Promise<Uint8Array>;
}

// storedKeys derives the keys of the upload with this salt (§6.1).
export async function storedKeys(secret: Uint8Array, id: string, salt: Uint8Array): Promise<StoredKeys> {
  return (await derive(secret, id, salt)).keys;
}

type ManifestOpener = (iv: Uint8Array<ArrayBuffer>, sealed: Uint8Array<ArrayBuffer>) => Promise<ArrayBuffer>;

async function derive(secret: Uint8Array, id: string, salt: Uint8Array): Promise<{ keys: StoredKeys; openPlain: ManifestOpener }> {
  checkSecret(secret, id);
  if (salt.length !== saltLen) throw new StoredError("secret", "bad salt");
  const s = concat(enc.encode(label), salt);
  const aes = async (name: string) =>
    crypto.subtle.importKey("raw", await hkdf(secret, s, name, id, 32), "AES-GCM", false, ["encrypt", "decrypt"]);
  const dataKey = await aes("data");
  const manifestKey = await aes("manifest");
  const idBytes = enc.encode(id);
  const recordLabel = enc.encode(`${label} record`);
  const params = (i: number, final: boolean): AesGcmParams => {
    const iv = new Uint8Array(12);
    new DataView(iv.buffer).setBigUint64(4, BigInt(i));
    const tail = new Uint8Array(9);
    new DataView(tail.buffer).setBigUint64(0, BigInt(i));
    tail[8] = final ? 1 : 0;
    return { name: "AES-GCM", iv, additionalData: concat(recordLabel, new Uint8Array([0]), idBytes, tail) };
  };
  const manifestAAD = concat(enc.encode(manifestMagic), salt, idBytes);
  const keys: StoredKeys = {
    salt: salt.slice(),
    async sealRecord(plain, i, final) {
      if (plain.length > recordSize || (!final && plain.length !== recordSize)) throw new RangeError(`record ${i} of ${plain.length} bytes`);
      return new Uint8Array(await crypto.subtle.encrypt(params(i, final), dataKey, concat(plain)));
    },
    async openRecord(sealed, i, final) {
      if (sealed.length < overhead || sealed.length > sealedRecordSize) throw new StoredError("record", `record ${i} does not open`);
      try {
        return new Uint8Array(await crypto.subtle.decrypt(params(i, final), dataKey, concat(sealed)));
      } catch {
        throw new StoredError("record", `record ${i} does not open`);
      }
    },
    async sealManifest(m, nonce = crypto.getRandomValues(new Uint8Array(nonceLen))) {
      // Field order as the Go peer writes it, so both seal the same bytes.
      const js = JSON.stringify({
        t: "stored", version: m.version, ...(m.agent ? { agent: m.agent } : {}), recordSize, chunkSize: m.chunkSize, totalSize: m.totalSize,
        files: m.files.map((f) => ({ path: f.path, size: f.size, ...(f.mtime ? { mtime: f.mtime } : {}), root: f.root })),
      });
      validate(JSON.parse(js) as Record<string, unknown>);
      const bytes = enc.encode(js);
      const padded = new Uint8Array(Math.ceil(bytes.length / manifestPad) * manifestPad).fill(0x20);
      padded.set(bytes);
      if (padded.length > maxManifest) throw new StoredError("manifest", "manifest too large");
      const iv = concat(nonce);
      const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: manifestAAD }, manifestKey, padded);
      return concat(enc.encode(manifestMagic), salt, iv, new Uint8Array(ct));
    },
  };
  const openPlain: ManifestOpener = (iv, sealed) =>
    crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: manifestAAD }, manifestKey, sealed);
  return { keys, openPlain };
}

const rootRe = /^[0-9a-f]{64}$/;

// validate checks a stored manifest by the rules of a live one (§4.1, §6.3).
function validate(m: Record<string, unknown>): StoredManifest {
  if (m.t !== "stored" || m.recordSize !== recordSize) throw new StoredError("manifest", "not a version 1 stored manifest");
  const files = m.files;
  if (Array.isArray(files)) {
    for (const [i, f] of (files as unknown[]).entries()) {
      const root = typeof f === "object" && f !== null ? (f as Record<string, unknown>).root : undefined;
      if (typeof root !== "string" || !rootRe.test(root)) throw new StoredError("manifest", `file ${i} has a bad root`);
    }
  }
  let live: Manifest;
  try {
    live = checkManifest({ ...m, t: "manifest" });
  } catch (e) {
    if (e instanceof ManifestError) throw new StoredError("manifest", e.message);
    throw e;
  }
  const roots = (files as { root: string }[]).map((f) => f.root);
  return { ...live, t: "stored", recordSize, files: live.files.map((f, i) => ({ ...f, root: roots[i]! })) };
}

// openManifest opens a sealed manifest with the link's secret and id and
// checks it; the keys it returns open the upload's records.
export async function openManifest(secret: Uint8Array, id: string, blob: Uint8Array): Promise<{ manifest: StoredManifest; keys: StoredKeys }> {
  if (blob.length < manifestHead + overhead || blob.length > manifestHead + maxManifest + overhead ||
    String.fromCharCode(...blob.subarray(0, manifestMagic.length)) !== manifestMagic) {
    throw new StoredError("manifest", "malformed manifest");
  }
  const { keys, openPlain } = await derive(secret, id, blob.slice(manifestMagic.length, manifestMagic.length + saltLen));
  let plain: Uint8Array;
  try {
    plain = new Uint8Array(await openPlain(blob.slice(manifestMagic.length + saltLen, manifestHead), blob.slice(manifestHead)));
  } catch {
    throw new StoredError("manifest", "manifest does not open");
  }
  let m: unknown;
  try {
    m = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain).replace(/ +$/, ""));
  } catch {
    throw new StoredError("manifest", "manifest is not JSON");
  }
  if (typeof m !== "object" || m === null || Array.isArray(m)) throw new StoredError("manifest", "manifest is not an object");
  return { manifest: validate(m as Record<string, unknown>), keys };
}

// openStream yields the plaintext of the sealed records that source delivers
// (from record first on), each only after it opened; a stream that is cut
// short or goes on after its final record is an error.
export async function* openStream(keys: StoredKeys, total: number, first: number, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const n = records(total);
  let i = first;
  let buf = new Uint8Array(sealedRecordSize);
  let have = 0;
  for await (let part of source) {
    while (part.length > 0) {
      if (i >= n) throw new StoredError("trailing", "data after the final record");
      const want = recordLen(total, i) + overhead;
      const c = Math.min(part.length, want - have);
      buf.set(part.subarray(0, c), have);
      have += c;
      part = part.subarray(c);
      if (have === want) {
        const plain = await keys.openRecord(buf.subarray(0, want), i, i === n - 1);
        i++;
        have = 0;
        buf = new Uint8Array(sealedRecordSize);
        yield plain;
      }
    }
  }
  if (i < n) throw new StoredError("truncated", `data ends at record ${i} of ${n}`);
}
