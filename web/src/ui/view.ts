// Pieces both pages share: the page state (data-state on <body>, which the
// end-to-end tests wait on), the error box, the connection line and the
// progress display.
import type { Progress } from "../transfer/progress";
import { RateMeter } from "../transfer/progress";
import { formatBytes, formatEta, formatRate } from "./format";

export type PageState =
  | "idle" | "waiting" | "paired" | "connecting" | "review" | "transferring" | "reconnecting" | "done" | "error" | "canceled";

export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

export function setState(s: PageState, status?: string): void {
  document.body.dataset.state = s;
  if (status !== undefined) $("status").textContent = status;
}

export function showError(message: string, state: PageState = "error"): void {
  setState(state);
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

export function showPhrase(words: string[]): void {
  const el = $("phrase");
  el.textContent = words.join(" ");
  $("phrase-box").hidden = false;
}

export function showPath(path: string): void {
  const el = $("path");
  el.dataset.path = path;
  el.textContent =
    path === "relay"
      ? "Connected through the relay server (your IP addresses stay hidden from each other)"
      : path === "direct"
        ? "Connected directly, peer to peer"
        : "Connected";
}

export class ProgressView {
  private meter = new RateMeter();
  private bar = $("progress") as HTMLProgressElement;
  private text = $("progress-text");

  constructor() {
    $("progress-box").hidden = false;
  }

  update(p: Progress): void {
    this.meter.add(p.done);
    this.bar.max = Math.max(1, p.total);
    this.bar.value = p.done;
    this.bar.dataset.done = String(p.done);
    const rate = this.meter.bytesPerSecond;
    const parts = [`${formatBytes(p.done)} of ${formatBytes(p.total)}`];
    if (p.files > 1) parts.push(`${p.filesDone} of ${p.files} files`);
    if (rate > 0 && p.done < p.total) parts.push(formatRate(rate), formatEta((p.total - p.done) / rate));
    this.text.textContent = parts.join(" · ");
  }
}

// supportProblem returns why this browser cannot run ferry, or "".
export function supportProblem(): string {
  if (!window.isSecureContext || !crypto?.subtle) {
    return "This page must be opened over https:// (or on localhost): browsers only allow the encryption ferry needs on secure pages. Ask the server's operator to enable HTTPS.";
  }
  if (typeof RTCPeerConnection !== "function") return "This browser cannot make peer-to-peer connections (WebRTC is missing or disabled).";
  if (typeof Worker !== "function" || typeof WebSocket !== "function") return "This browser is too old for ferry.";
  return "";
}
