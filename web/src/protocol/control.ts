// CONTROL messages of the transfer (PROTOCOL.md §4) and the receiver's
// checks on a manifest before anything is shown or written.

import {
  badReason, deviceNames as deviceNameList, maxChunkSize, maxFiles, maxInteger, maxPathElemLen, maxPathLen, maxWindow,
  minChunkSize, pathReason, protocolVersion,
} from "./constants_gen";
import { foldRuns } from "./fold_gen";

export { maxChunkSize, maxFiles, maxPathElemLen, maxPathLen, maxWindow, minChunkSize, protocolVersion } from "./constants_gen";

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

// ManifestError is a manifest or accept this page refuses; reason is one of
// badReason (or badReason.pathPrefix and a pathReason), the same the Go
// peer gives (testdata/vectors/manifests.json, accepts.json).
export class ManifestError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const enc = new TextEncoder();

// Windows device names are refused everywhere: files received here are
// often copied to Windows later.
const deviceNames = new Set(deviceNameList);

// runeProblem says why code point c may not appear in a file name, or ""
// (PROTOCOL.md §4.1, the same list as the Go peer's proto.RuneProblem):
// names are shown before the user accepts them, so nothing may hide or
// rearrange what they see.
export function runeProblem(c: number): string {
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return pathReason.control;
  if (c === 0x5c) return pathReason.backslash;
  if (c === 0x061c || c === 0x200e || c === 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) return pathReason.bidi;
  if (
    c === 0x00ad || c === 0x034f || c === 0x115f || c === 0x1160 || c === 0x17b4 || c === 0x17b5 || c === 0x180e ||
    c === 0x200b || (c >= 0x2060 && c <= 0x2064) || (c >= 0x206a && c <= 0x206f) || c === 0x3164 || c === 0xfeff ||
    c === 0xffa0 || (c >= 0xfff9 && c <= 0xfffb) || (c >= 0xe0000 && c <= 0xe007f)
  ) return pathReason.invisible;
  return "";
}

// pathProblem returns why a manifest path is unsafe, or "" if it is fine;
// the reasons are the Go peer's proto.PathProblem
// (testdata/vectors/paths.json), checked in the same order.
export function pathProblem(p: string): string {
  if (p === "") return pathReason.empty;
  if (enc.encode(p).length > maxPathLen) return pathReason.tooLong;
  for (const ch of p) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xd800 && c <= 0xdfff) return pathReason.notUTF8;
  }
  if (p.startsWith("/")) return pathReason.absolute;
  for (const ch of p) {
    const why = runeProblem(ch.codePointAt(0)!);
    if (why) return why;
  }
  for (const el of p.split("/")) {
    if (el === "") return pathReason.emptyElement;
    if (el === "." || el === "..") return pathReason.dotElement;
    if (enc.encode(el).length > maxPathElemLen) return pathReason.elementTooLong;
    if (el.length >= 2 && el[1] === ":") return pathReason.driveLetter;
  }
  for (const el of p.split("/")) {
    let base = el.toUpperCase();
    const dot = base.indexOf(".");
    if (dot >= 0) base = base.slice(0, dot);
    if (deviceNames.has(base.replace(/ +$/, ""))) return pathReason.deviceName;
  }
  return "";
}

// lowerCodePoint is c's simple lowercase mapping from Go's Unicode tables
// (fold_gen.ts): binary search for the last run starting at or before c.
export function lowerCodePoint(c: number): number {
  let lo = 0;
  let hi = foldRuns.length / 4;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (foldRuns[4 * mid]! <= c) lo = mid + 1;
    else hi = mid;
  }
  if (lo === 0) return c;
  const i = 4 * (lo - 1);
  const [start, end, step, delta] = [foldRuns[i]!, foldRuns[i + 1]!, foldRuns[i + 2]!, foldRuns[i + 3]!];
  return c <= end && (c - start) % step === 0 ? c + delta : c;
}

// foldPath is the key under which two paths count as the same (PROTOCOL.md
// §4.1): each code point by its simple lowercase mapping, exactly as the
// Go peer's strings.ToLower. Not toLowerCase: that applies the final-sigma
// rule, turns U+0130 into two code points, and follows the Unicode version
// of the browser, which need not be Go's.
export function foldPath(p: string): string {
  if (/^[\x00-\x7f]*$/.test(p)) return p.toLowerCase();
  let out = "";
  for (const ch of p) out += String.fromCodePoint(lowerCodePoint(ch.codePointAt(0)!));
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

// absent: JSON null counts as a field left out (PROTOCOL.md §4).
const absent = (v: unknown): v is undefined | null => v === undefined || v === null;

// checkManifest validates an untrusted manifest (PROTOCOL.md §4.1): the
// same verdict as the Go peer, and the same reason for a manifest that
// breaks one rule (testdata/vectors/manifests.json; of several broken
// rules, Go names a value of the wrong type first).
export function checkManifest(m: Record<string, unknown>): Manifest {
  const bad = (reason: string, why: string): never => {
    throw new ManifestError(reason, why);
  };
  if (m.t !== "manifest") bad(badReason.malformed, "not a manifest");
  if (!absent(m.agent) && typeof m.agent !== "string") bad(badReason.agent, "the sender's agent is not a string");
  if (!absent(m.files) && !Array.isArray(m.files)) bad(badReason.malformed, "the file list is not a list");
  if (m.files !== null && Array.isArray(m.files) && m.files.some((f) => f !== null && (typeof f !== "object" || Array.isArray(f)))) {
    bad(badReason.malformed, "a file entry is malformed");
  }
  if (m.version !== protocolVersion) bad(badReason.version, `manifest version ${String(m.version)}, this page speaks ${protocolVersion}`);
  const cs = m.chunkSize;
  if (!isUint(cs) || cs < minChunkSize || cs > maxChunkSize) bad(badReason.chunkSize, "chunk size out of range");
  const files = (m.files ?? []) as unknown[];
  if (files.length === 0 || files.length > maxFiles) bad(badReason.fileCount, "no files or too many files");
  const out: FileEntry[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const [i, f] of files.entries()) {
    const { path, size, mtime } = (f ?? {}) as Record<string, unknown>;
    if (!absent(path) && typeof path !== "string") bad(badReason.malformed, `file ${i} has a malformed path`);
    const p = (path ?? "") as string;
    const why = pathProblem(p);
    if (why) bad(badReason.pathPrefix + why, `unsafe file name ${showName(p)}: ${why}`);
    if (!isUint(size) || size > maxInteger || Math.floor(size / (cs as number)) >= 0xffffffff) bad(badReason.size, `file ${i} has a bad size`);
    if (!absent(mtime) && !(typeof mtime === "number" && Number.isSafeInteger(mtime))) bad(badReason.mtime, `file ${i} has a bad time`);
    const key = foldPath(p);
    if (seen.has(key)) bad(badReason.duplicate, `duplicate file name ${showName(p)}`);
    seen.add(key);
    total += size as number;
    const e: FileEntry = { path: p, size: size as number };
    if (mtime) e.mtime = mtime as number;
    out.push(e);
  }
  for (const f of out) {
    let p = f.path;
    for (let i = p.lastIndexOf("/"); i >= 0; i = p.lastIndexOf("/")) {
      p = p.slice(0, i);
      if (seen.has(foldPath(p))) bad(badReason.fileAndFolder, `${showName(p)} is both a file and a folder`);
    }
  }
  if (total > maxInteger || m.totalSize !== total) bad(badReason.totalSize, "total size does not match the files");
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

// checkAccept validates the receiver's answer against a manifest: the same
// verdict and reason as the Go peer (testdata/vectors/accepts.json).
export function checkAccept(m: Record<string, unknown>, man: Manifest): Accept {
  const w = m.window;
  if (!isUint(w) || w < 1 || w > maxWindow) throw new ManifestError(badReason.window, "accept window out of range");
  const bad = (why: string): never => {
    throw new ManifestError(badReason.resume, why);
  };
  const resume: ResumeFile[] = [];
  if (!absent(m.resume)) {
    if (!Array.isArray(m.resume)) bad("bad resume list");
    for (const r of m.resume as unknown[]) {
      if (typeof r !== "object" || r === null || Array.isArray(r)) bad("bad resume entry");
      const { file, have } = r as Record<string, unknown>;
      if (!isUint(file) || !Array.isArray(have)) bad("bad resume entry");
      const ranges: Range[] = [];
      for (const h of have as unknown[]) {
        const [a, b] = (Array.isArray(h) && h.length === 2 ? h : []) as unknown[];
        if (!isUint(a) || !isUint(b) || b > 0xffffffff || a >= b) bad("bad resume range");
        ranges.push([a as number, b as number]);
      }
      resume.push({ file: file as number, have: ranges });
    }
  }
  // Against the manifest once the message is well formed, as the Go peer does.
  for (const r of resume) {
    if (r.file >= man.files.length) bad("resume entry for no file");
    const n = chunkCount(man.files[r.file]!.size, man.chunkSize);
    if (r.have.some((h) => h[1] > n)) bad("resume range out of bounds");
  }
  return { t: "accept", window: w as number, resume };
}
