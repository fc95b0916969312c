// CONTROL messages of the transfer (PROTOCOL.md §4) and the receiver's
// checks on a manifest before anything is shown or written.

export const protocolVersion = 1;
export const minChunkSize = 1 << 10;
export const maxChunkSize = 16 << 20;
export const maxFiles = 1 << 20;
export const maxPathLen = 4096;
export const maxPathElemLen = 255;
export const maxWindow = 1 << 16;

export interface FileEntry {
  path: string;
  size: number;
  mtime?: number; // Unix milliseconds
}

export interface Manifest {
  t: "manifest";
  version: number;
  agent?: string;
  chunkSize: number;
  totalSize: number;
  files: FileEntry[];
}

export type Range = [number, number]; // half-open chunk index range

export interface ResumeFile {
  file: number;
  have: Range[];
}

export interface Accept {
  t: "accept";
  window: number;
  resume?: ResumeFile[];
}

export type Control =
  | Manifest
  | Accept
  | { t: "decline"; reason?: string }
  | { t: "cancel"; reason?: string }
  | { t: "eof"; file: number; root: string }
  | { t: "verified"; file: number }
  | { t: "done" }
  | { t: "complete" }
  | { t: "error"; code: string; file?: number; message?: string };

export class ManifestError extends Error {}

const enc = new TextEncoder();

// Windows device names are refused everywhere: files received here are
// often copied to Windows later (same list as the Go receiver).
const deviceNames = new Set([
  "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
  ...Array.from({ length: 9 }, (_, i) => `COM${i + 1}`),
  ...Array.from({ length: 9 }, (_, i) => `LPT${i + 1}`),
]);

// runeProblem says why code point c may not appear in a file name, or ""
// (PROTOCOL.md §4.1, the same list as the Go peer's proto.RuneProblem):
// names are shown before the user accepts them, so nothing may hide or
// rearrange what they see.
export function runeProblem(c: number): string {
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return "control character";
  if (c === 0x5c) return "backslash";
  if (c === 0x061c || c === 0x200e || c === 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) return "bidi control";
  if (
    c === 0x00ad || c === 0x034f || c === 0x115f || c === 0x1160 || c === 0x17b4 || c === 0x17b5 || c === 0x180e ||
    c === 0x200b || (c >= 0x2060 && c <= 0x2064) || (c >= 0x206a && c <= 0x206f) || c === 0x3164 || c === 0xfeff ||
    c === 0xffa0 || (c >= 0xfff9 && c <= 0xfffb) || (c >= 0xe0000 && c <= 0xe007f)
  ) return "invisible character";
  return "";
}

// pathProblem returns why a manifest path is unsafe, or "" if it is fine;
// the reasons are the Go receiver's (testdata/vectors/paths.json), checked
// in the same order.
export function pathProblem(p: string): string {
  if (p === "") return "empty";
  if (enc.encode(p).length > maxPathLen) return "too long";
  for (const ch of p) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xd800 && c <= 0xdfff) return "not UTF-8";
  }
  if (p.startsWith("/")) return "absolute";
  for (const ch of p) {
    const why = runeProblem(ch.codePointAt(0)!);
    if (why) return why;
  }
  for (const el of p.split("/")) {
    if (el === "") return "empty element";
    if (el === "." || el === "..") return "dot element";
    if (enc.encode(el).length > maxPathElemLen) return "element too long";
    if (el.length >= 2 && el[1] === ":") return "drive letter";
  }
  for (const el of p.split("/")) {
    let base = el.toUpperCase();
    const dot = base.indexOf(".");
    if (dot >= 0) base = base.slice(0, dot);
    if (deviceNames.has(base.replace(/ +$/, ""))) return "device name";
  }
  return "";
}

// foldPath is the key under which two paths count as the same (PROTOCOL.md
// §4.1): each code point by its simple lowercase mapping, like the Go
// peer's strings.ToLower. toLowerCase on the whole string would apply the
// final-sigma rule and turn U+0130 into two code points; on one code point
// only U+0130 differs from the simple mapping.
export function foldPath(p: string): string {
  if (/^[\x00-\x7f]*$/.test(p)) return p.toLowerCase();
  let out = "";
  for (const ch of p) out += ch === "\u0130" ? "i" : ch.toLowerCase();
  return out;
}

// Format, unassigned, private-use and lone surrogate code points, and the
// line and paragraph separators.
const notShown = /^[\p{Cf}\p{Cn}\p{Co}\p{Cs}\p{Zl}\p{Zp}]$/u;

// showName returns a name as it is safe to show in text: unchanged when it
// holds nothing runeProblem refuses (but backslashes) or other invisible
// code points, else quoted with those escaped as \u{...}, so that a local
// name that was never validated (the sender's own files) cannot rearrange
// the text around it.
export function showName(p: string): string {
  const odd = (ch: string): boolean => {
    const c = ch.codePointAt(0)!;
    if (c === 0x5c || c === 0x200c || c === 0x200d) return false;
    return runeProblem(c) !== "" || notShown.test(ch);
  };
  const chars = Array.from(p);
  if (!chars.some(odd)) return p;
  return `"${chars.map((ch) => (odd(ch) ? `\\u{${ch.codePointAt(0)!.toString(16)}}` : ch === '"' ? '\\"' : ch)).join("")}"`;
}

export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

export function chunkLen(size: number, chunkSize: number, index: number): number {
  return Math.min(chunkSize, size - index * chunkSize);
}

function isUint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

// checkManifest validates an untrusted manifest (PROTOCOL.md §4.1).
export function checkManifest(m: Record<string, unknown>): Manifest {
  const bad = (why: string): never => {
    throw new ManifestError(why);
  };
  if (m.t !== "manifest") bad("not a manifest");
  if (m.version !== protocolVersion) bad(`manifest version ${String(m.version)}, this page speaks ${protocolVersion}`);
  const cs = m.chunkSize;
  if (!isUint(cs) || cs < minChunkSize || cs > maxChunkSize) bad("chunk size out of range");
  const files = m.files;
  if (!Array.isArray(files) || files.length === 0 || files.length > maxFiles) bad("no files or too many files");
  const out: FileEntry[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const [i, f] of (files as unknown[]).entries()) {
    if (typeof f !== "object" || f === null) bad(`file ${i} is malformed`);
    const { path, size, mtime } = f as Record<string, unknown>;
    if (typeof path !== "string") bad(`file ${i} has no path`);
    const why = pathProblem(path as string);
    if (why) bad(`unsafe file name ${showName(path as string)}: ${why}`);
    if (!isUint(size) || Math.floor(size / (cs as number)) >= 0xffffffff) bad(`file ${i} has a bad size`);
    if (mtime !== undefined && !isUint(mtime)) bad(`file ${i} has a bad time`);
    const key = foldPath(path as string);
    if (seen.has(key)) bad(`duplicate file name ${showName(path as string)}`);
    seen.add(key);
    total += size as number;
    const e: FileEntry = { path: path as string, size: size as number };
    if (mtime) e.mtime = mtime as number;
    out.push(e);
  }
  for (const f of out) {
    let p = f.path;
    for (let i = p.lastIndexOf("/"); i >= 0; i = p.lastIndexOf("/")) {
      p = p.slice(0, i);
      if (seen.has(foldPath(p))) bad(`${showName(p)} is both a file and a folder`);
    }
  }
  if (!Number.isSafeInteger(total) || m.totalSize !== total) bad("total size does not match the files");
  const res: Manifest = { t: "manifest", version: protocolVersion, chunkSize: cs as number, totalSize: total, files: out };
  if (typeof m.agent === "string") res.agent = m.agent;
  return res;
}

export function sameManifest(a: Manifest, b: Manifest): boolean {
  if (a.chunkSize !== b.chunkSize || a.totalSize !== b.totalSize || a.files.length !== b.files.length) return false;
  return a.files.every((f, i) => {
    const g = b.files[i]!;
    return f.path === g.path && f.size === g.size && (f.mtime ?? 0) === (g.mtime ?? 0);
  });
}

// checkAccept validates the receiver's answer against a manifest.
export function checkAccept(m: Record<string, unknown>, man: Manifest): Accept {
  const w = m.window;
  if (!isUint(w) || w < 1 || w > maxWindow) throw new ManifestError("accept window out of range");
  const resume: ResumeFile[] = [];
  if (m.resume !== undefined) {
    if (!Array.isArray(m.resume)) throw new ManifestError("bad resume list");
    for (const r of m.resume as unknown[]) {
      const { file, have } = (r ?? {}) as Record<string, unknown>;
      if (!isUint(file) || file >= man.files.length || !Array.isArray(have)) throw new ManifestError("bad resume entry");
      const n = chunkCount(man.files[file]!.size, man.chunkSize);
      const ranges: Range[] = [];
      for (const h of have as unknown[]) {
        if (!Array.isArray(h) || h.length !== 2 || !isUint(h[0]) || !isUint(h[1]) || h[0] >= h[1] || h[1] > n) {
          throw new ManifestError("resume range out of bounds");
        }
        ranges.push([h[0], h[1]]);
      }
      resume.push({ file, have: ranges });
    }
  }
  return { t: "accept", window: w, resume };
}
