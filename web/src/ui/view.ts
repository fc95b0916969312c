// Pieces both pages share: the page state (data-state on <body>, which the
// end-to-end tests wait on and the stylesheet keys on), the headline and
// status line, the error box, the connection row (verification phrase,
// direct/relay badge) and the transfer card (total and per-file progress,
// BLAKE3 roots). Everything is plain DOM; nothing here talks to the
// network, so the test scenes (scene.ts) render through the same code.
import type { FileEntry } from "../protocol/control";
import type { Progress } from "../transfer/progress";
import { RateMeter } from "../transfer/progress";
import { formatBytes, formatEta, formatRate, plural } from "./format";

export type PageState =
  | "loading"
  | "idle"
  | "signin"
  | "ready"
  | "waiting"
  | "paired"
  | "connecting"
  | "review"
  | "transferring"
  | "reconnecting"
  | "done"
  | "error"
  | "canceled";

export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

// h makes an element with text or children.
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

export function setState(s: PageState, title?: string, status?: string): void {
  document.body.dataset.state = s;
  if (title !== undefined) $("title").textContent = title;
  if (status !== undefined) $("status").textContent = status;
}

export interface Action {
  label: string;
  href?: string; // a link; else a button that reloads the page
  primary?: boolean;
}

export function showError(
  message: string,
  state: PageState = "error",
  actions: Action[] = [{ label: "Start over", href: "" }],
  title = state === "canceled" ? "Transfer canceled" : "Something went wrong",
): void {
  setState(state, title, "");
  $("error-text").textContent = message;
  $("error-actions").replaceChildren(
    ...actions.map((a, i) => {
      if (a.href === "") {
        const b = h("button", { type: "button", class: i === 0 ? "primary" : "" }, a.label);
        b.onclick = () => location.reload();
        return b;
      }
      return h("a", { class: `button${a.primary || i === 0 ? " primary" : ""}`, href: a.href ?? "/" }, a.label);
    }),
  );
  $("error-actions").hidden = actions.length === 0;
  $("error").hidden = false;
}

export function showPhrase(words: string[]): void {
  $("phrase").textContent = words.join(" ");
  $("phrase-box").hidden = false;
  $("conn").hidden = false;
}

export function showPath(path: string): void {
  const el = $("path");
  el.dataset.path = path;
  el.textContent = path === "relay" ? "Relayed, still end-to-end encrypted" : path === "direct" ? "Direct connection" : "Connected";
  el.title =
    path === "relay"
      ? "The bytes go through this server's relay (TURN), encrypted end to end: neither side learns the other's IP address."
      : path === "direct"
        ? "The bytes go straight from one device to the other."
        : "";
  el.hidden = false;
  $("conn").hidden = false;
}

// announce tells screen readers about milestones the visible text does
// not announce by itself (the progress line is not a live region).
export function announce(text: string): void {
  $("announce").textContent = text;
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

// commonFolder is the folder every file is in ("photos" for
// photos/a.jpg and photos/2024/b.jpg), or "" if there is none (or one file).
export function commonFolder(files: FileEntry[]): string {
  if (files.length < 2) return "";
  const first = files[0]!.path.split("/")[0]!;
  return files.every((f) => f.path.startsWith(first + "/")) ? first : "";
}

// describeFiles is the files card's heading and the line under it.
export function describeFiles(files: FileEntry[], total: number): { title: string; meta: string } {
  const folder = commonFolder(files);
  if (folder) return { title: folder, meta: `Folder · ${plural(files.length, "file")} · ${formatBytes(total)}` };
  if (files.length === 1) {
    const p = files[0]!.path;
    return { title: p.slice(p.lastIndexOf("/") + 1), meta: formatBytes(total) };
  }
  return { title: plural(files.length, "file"), meta: formatBytes(total) };
}

const maxRows = 1000;

interface Row {
  li: HTMLLIElement;
  fill: HTMLElement;
  status: HTMLElement;
  root: HTMLElement;
}

// fileRows makes the list rows of files (at most maxRows): the name (its
// folders dimmed, inside the common folder), the size, and a line for the
// bar, the root and the status.
export function fileRows(files: FileEntry[]): Row[] {
  const strip = commonFolder(files).length;
  return files.slice(0, maxRows).map((f) => {
    const rel = strip ? f.path.slice(strip + 1) : f.path;
    const slash = rel.lastIndexOf("/");
    const name = h("span", { class: "file-name", title: f.path });
    if (slash >= 0) name.append(h("span", { class: "file-dir" }, rel.slice(0, slash + 1)));
    name.append(rel.slice(slash + 1));
    const fill = h("span", { class: "file-fill" });
    const status = h("span", { class: "file-status" });
    const root = h("code", { class: "file-root" });
    const li = h(
      "li",
      { class: "file" },
      h("span", { class: "file-line" }, name, h("span", { class: "file-size" }, formatBytes(f.size))),
      h("span", { class: "file-sub" }, h("span", { class: "file-bar", "aria-hidden": "true" }, fill), root, status),
    );
    return { li, fill, status, root };
  });
}

export function moreRow(n: number): HTMLLIElement {
  return h("li", { class: "file more" }, `… and ${plural(n - maxRows, "more file")}`);
}

// TransferCard is the files card: the list with a bar per file, the total
// bar with rate and time left, and the roots once verified. Row updates
// touch only what changed, so hundreds of files stay cheap at 10 Hz.
export class TransferCard {
  private rows: (Row & { shown: string; frac: number })[] = [];
  private meter = new RateMeter();
  private bar = $("progress") as HTMLProgressElement;
  private lastMilestone = -1;
  private lastPct = -1;
  private verb: string;

  constructor(
    private files: FileEntry[],
    private total: number,
    role: "send" | "receive",
  ) {
    this.verb = role === "send" ? "sent" : "received";
    const d = describeFiles(files, total);
    $("files-title").textContent = d.title;
    $("files-meta").textContent = d.meta;
    const list = $("file-list");
    list.hidden = files.length === 1; // the total bar is that file's bar
    list.replaceChildren(
      ...fileRows(files).map(({ li, fill, status, root }) => {
        li.dataset.state = "waiting";
        status.textContent = "Waiting";
        this.rows.push({ li, fill, status, root, shown: "waiting", frac: 0 });
        return li;
      }),
    );
    if (files.length > maxRows) list.append(moreRow(files.length));
    this.text(0, 0, 0, 0);
  }

  // update shows p; rate overrides the measured rate (test scenes).
  update(p: Progress, rate?: number): void {
    $("total").hidden = false;
    this.meter.add(p.done);
    const r = rate ?? this.meter.bytesPerSecond;
    this.bar.max = Math.max(1, p.total);
    this.bar.value = p.done;
    this.bar.dataset.done = String(p.done);
    this.text(p.done, r, p.filesDone, p.files);
    for (let i = 0; i < this.rows.length; i++) {
      const row = this.rows[i]!;
      const size = this.files[i]!.size;
      const done = p.fileDone[i] ?? 0;
      const root = p.roots[i] ?? "";
      const state = root ? "verified" : done >= size && size > 0 ? "checking" : done > 0 ? "active" : "waiting";
      const frac = size > 0 ? Math.min(1, done / size) : root ? 1 : 0;
      if (frac !== row.frac) {
        row.frac = frac;
        row.fill.style.transform = `scaleX(${frac})`;
      }
      const label =
        state === "verified" ? "Verified" : state === "checking" ? "Checking…" : state === "active" ? `${Math.floor(frac * 100)}%` : "Waiting";
      if (state !== row.shown || (state === "active" && row.status.textContent !== label)) {
        row.shown = state;
        row.li.dataset.state = state;
        row.status.textContent = label;
        if (root) {
          row.root.textContent = `BLAKE3 ${root}`;
          row.root.title = `BLAKE3 root ${root}`;
        }
      }
    }
    // A tab in the background shows how far it is.
    const pct = p.total > 0 ? Math.floor((100 * p.done) / p.total) : 0;
    if (pct !== this.lastPct) {
      this.lastPct = pct;
      document.title = `${pct}% ${this.verb} · ferry`;
    }
    // Screen readers hear about every quarter, not every tick.
    const q = p.total > 0 ? Math.floor((4 * p.done) / p.total) : 0;
    if (q !== this.lastMilestone && q > 0 && q < 4) announce(`${q * 25}% ${this.verb}`);
    this.lastMilestone = q;
  }

  private text(done: number, rate: number, filesDone: number, files: number): void {
    const left = this.total - done;
    const rateText = rate > 0 && left > 0 ? `${formatRate(rate)} · ${formatEta(left / rate)}` : "";
    const filesText = files > 1 ? `${filesDone} of ${files} files verified` : done >= this.total && this.total > 0 ? "Checking…" : "";
    $("progress-text").replaceChildren(
      h("span", { class: "pt-bytes" }, `${formatBytes(done)} of ${formatBytes(this.total)}`),
      h("span", { class: "pt-rate" }, rateText),
      h("span", { class: "pt-files" }, filesText),
    );
  }

  // done shows the verified state with every file's root.
  done(roots: readonly string[]): void {
    $("total").hidden = false;
    this.bar.max = Math.max(1, this.total);
    this.bar.value = this.bar.max;
    this.bar.dataset.done = String(this.total);
    const n = this.files.length;
    $("progress-text").replaceChildren(
      h("span", { class: "pt-bytes" }, `${formatBytes(this.total)} ${this.verb}`),
      h("span", { class: "pt-rate" }, ""),
      h("span", { class: "pt-files ok" }, n === 1 ? "Verified with BLAKE3" : `All ${n} files verified with BLAKE3`),
    );
    if (n === 1) {
      $("root-one-text").textContent = roots[0] ?? "";
      $("root-one").hidden = false;
    } else {
      $("roots-text").textContent = this.files.map((f, i) => `${roots[i] ?? ""}  ${f.path}`).join("\n");
      $("roots").hidden = false;
    }
    announce(`Done: ${n === 1 ? "the file was" : `all ${n} files were`} ${this.verb} and verified.`);
    document.title = `✓ ${this.verb[0]!.toUpperCase()}${this.verb.slice(1)} and verified · ferry`;
  }
}
