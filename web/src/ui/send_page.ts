// The send page: pick files or a folder (picker or drag and drop), get a
// link and QR code, watch the transfer until the receiver verified it.
import type { FileEntry } from "../protocol/control";
import { foldPath, pathProblem, showName } from "../protocol/control";
import { forbidden } from "../protocol/signal";
import type { FerryError } from "../protocol/errors";
import { TooLarge } from "../transfer/errors";
import type { Progress } from "../transfer/progress";
import { SendFlow } from "../transfer/send_flow";
import type { Source } from "../transfer/sender";
import { fetchMe, showAccount, signInHref, type Me } from "./account";
import { guardUnload } from "./unload";
import { formatBytes, formatClock } from "./format";
import { qrSVG } from "./qr";
import { $, announce, describeFiles, fileRows, moreRow, setState, showError, showPath, showPhrase, supportProblem, TransferCard } from "./view";

// The views below are what the page shows at each step; the controller
// (sendPage) and the test scenes (scene.ts) both go through them.

export function viewIdle(): void {
  setState("idle", "Send files of any size", "Straight to the other device: end-to-end encrypted, verified, and never stored on the server.");
  $("pick").hidden = false;
  $("signin").hidden = true;
}

// viewLimit tells, on the pick card, how much one transfer may carry.
export function viewLimit(me: Me): void {
  $("pick-note").textContent = me.maxBytes
    ? `Files or whole folders, up to ${formatBytes(me.maxBytes)} in one transfer. Folders keep their structure.`
    : "Files or whole folders, any size. Folders keep their structure.";
}

// tooLarge explains a pick over the server's limit.
function tooLarge(total: number, max: number): string {
  return `These files come to ${formatBytes(total)}, but this server accepts at most ${formatBytes(max)} in one transfer. Choose fewer or smaller files.`;
}

export function viewSignIn(me: Me): void {
  setState("signin", "Send files of any size", "Straight to the other device: end-to-end encrypted, verified, and never stored on the server.");
  ($("signin-link") as HTMLAnchorElement).href = signInHref(me);
  $("pick").hidden = true;
  $("signin").hidden = false;
}

// viewPicked replaces the picker with the share card (the link comes a
// moment later into space already there) and prepares the files card
// that replaces the share card once the receiver is there. Each step
// swaps one card for another in place, so nothing on screen moves.
export function viewPicked(files: FileEntry[], total: number, shareable: boolean): TransferCard {
  $("pick").hidden = true;
  $("error").hidden = true;
  setState("waiting", "Creating a link…", "");
  const d = describeFiles(files, total);
  $("share-files-title").textContent = d.title;
  $("share-files-meta").textContent = d.meta;
  const list = $("share-list");
  list.replaceChildren(...fileRows(files).map((r) => r.li));
  if (files.length > 1000) list.append(moreRow(files.length));
  $("share-button").hidden = !shareable;
  $("share").hidden = false;
  return new TransferCard(files, total, "send");
}

export function viewLink(link: string, expires: number): void {
  ($("link") as HTMLInputElement).value = link;
  ($("copy") as HTMLButtonElement).disabled = false;
  $("qr").replaceChildren(qrSVG(link));
  $("share-expiry").textContent = expires > 0 ? `Valid until ${formatClock(expires)}` : "";
  setState("waiting", "Your link is ready", "Send it to the receiver and keep this page open: the files go straight from here once they open it.");
}

export function viewPaired(): void {
  $("share").hidden = true;
  $("files").hidden = false;
  $("conn").hidden = false;
  $("total").hidden = false;
  $("cancel").hidden = false;
  setState("paired", "Connecting…", "The receiver opened the link. Securing the connection…");
}

export function viewConnected(path: string): void {
  showPath(path);
  setState("transferring", "Waiting for the receiver to accept", "They see the names and sizes and choose where to save.");
}

export function viewSending(): void {
  setState("transferring", "Sending…", "Keep this page open until the transfer is done.");
}

export function viewReconnecting(): void {
  setState("reconnecting", "Reconnecting…", "The connection dropped. It picks up from the verified chunks as soon as it is back.");
}

export function viewDone(card: TransferCard, roots: readonly string[], total: number, files: number): void {
  $("cancel").hidden = true;
  card.done(roots);
  $("after").hidden = false;
  setState(
    "done",
    "Sent and verified",
    `The receiver checked every chunk and ${files === 1 ? "the file's BLAKE3 root" : `all ${files} files' BLAKE3 roots`}: ${formatBytes(total)} arrived intact.`,
  );
}

let running = false;
let me: Me | null = null;

export function sendPage(): void {
  const problem = supportProblem();
  if (problem) {
    showError(problem, "error", []);
    return;
  }
  viewIdle();
  void fetchMe().then((m) => {
    me = m;
    showAccount(m);
    viewLimit(m);
    if (m.signInRequired && !m.maySend && !running) viewSignIn(m);
  });
  const relay = $("relay-only") as HTMLInputElement;
  if (new URLSearchParams(location.search).get("relay") === "1") relay.checked = true;
  const fileInput = $("file-input") as HTMLInputElement;
  const dirInput = $("dir-input") as HTMLInputElement;
  $("choose-files").onclick = () => fileInput.click();
  $("choose-folder").onclick = () => dirInput.click();
  fileInput.addEventListener("change", () => fileInput.files && start(fromList(fileInput.files)));
  dirInput.addEventListener("change", () => dirInput.files && start(fromList(dirInput.files)));
  // The whole page takes drops while nothing is being sent; the card
  // shows where they land.
  const drop = $("pick");
  const idle = () => !running && document.body.dataset.state === "idle";
  document.addEventListener("dragover", (e) => {
    if (!idle()) return;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
    drop.classList.add("over");
  });
  document.addEventListener("dragleave", (e) => {
    if (e.relatedTarget === null) drop.classList.remove("over");
  });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (!idle() || !e.dataTransfer) return;
    void fromDrop(e.dataTransfer).then(start, () => notice("Could not read the dropped files. Try the “Choose files” button."));
  });
  guardUnload(() => running && ["waiting", "paired", "connecting", "transferring", "reconnecting"].includes(document.body.dataset.state ?? ""));
}

// fromList keeps folder-relative paths (webkitdirectory) when present.
function fromList(list: FileList): Source[] {
  return Array.from(list, (file) => ({ file, path: file.webkitRelativePath || file.name }));
}

// fromDrop walks dropped folders so their files keep relative paths.
async function fromDrop(dt: DataTransfer): Promise<Source[]> {
  const entries = Array.from(dt.items, (i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return fromList(dt.files);
  const out: Source[] = [];
  const walk = async (e: FileSystemEntry, prefix: string): Promise<void> => {
    if (e.isFile) {
      const file = await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej));
      out.push({ file, path: prefix + e.name });
    } else if (e.isDirectory) {
      const reader = (e as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (batch.length === 0) break;
        for (const c of batch) await walk(c, `${prefix}${e.name}/`);
      }
    }
  };
  for (const e of entries) await walk(e, "");
  return out;
}

// notice explains why a pick was not taken; the page stays ready.
function notice(message: string): void {
  $("error-text").textContent = message;
  $("error-actions").hidden = true;
  $("error").hidden = false;
}

// problemWith returns why these files cannot be offered, or "".
function problemWith(sources: Source[]): string {
  if (sources.length === 0) return "There are no files in what you chose (empty folders are not sent).";
  const seen = new Set<string>();
  for (const s of sources) {
    const why = pathProblem(s.path);
    // showName: this name was not validated, and may be why.
    if (why) return `“${showName(s.path)}” cannot be sent safely (${why}). Rename it and try again.`;
    const key = foldPath(s.path);
    if (seen.has(key)) return `Two files are both named “${showName(s.path)}”. Rename one and try again.`;
    seen.add(key);
  }
  return "";
}

function start(sources: Source[]): void {
  if (running) return;
  const why = problemWith(sources);
  if (why) {
    notice(why);
    return;
  }
  const files = sources.map((s) => ({ path: s.path, size: s.file.size }));
  const total = sources.reduce((a, s) => a + s.file.size, 0);
  // The server's limit (GET /api/v1/me) refuses before any link exists;
  // created.maxBytes checks again in case the page did not know it yet.
  // Test hook: ferryTest.ignoreMaxBytes offers anyway (see SendFlow).
  const ignore = (globalThis as { ferryTest?: { ignoreMaxBytes?: boolean } }).ferryTest?.ignoreMaxBytes === true;
  if (me?.maxBytes && total > me.maxBytes && !ignore) {
    backToPicking();
    notice(tooLarge(total, me.maxBytes));
    return;
  }
  running = true;
  const card = viewPicked(files, total, canShare(location.origin + "/r"));
  const relay = $("relay-only") as HTMLInputElement;
  let last: Progress | null = null;
  let sending = false;
  const flow = new SendFlow(sources, location.origin, () => relay.checked, {
    link(link, expires) {
      viewLink(link, expires);
      // The button that was used is gone: keep the keyboard focus on the
      // page, on the next thing to do.
      if (!document.activeElement || document.activeElement === document.body) $("copy").focus();
    },
    paired() {
      relay.disabled = true;
      viewPaired();
    },
    phrase(words) {
      showPhrase(words);
      setState("connecting", undefined, "Connecting to the receiver…");
    },
    connected(path) {
      if (sending) {
        showPath(path);
        viewSending();
      } else {
        viewConnected(path);
      }
    },
    path(path) {
      showPath(path);
    },
    reconnecting() {
      viewReconnecting();
    },
    progress(p) {
      last = p;
      card.update(p);
      if (!sending && p.done > 0) sending = true;
      if (sending && document.body.dataset.state !== "transferring") viewSending();
    },
  });
  (window as unknown as { ferryDebug: unknown }).ferryDebug = { flow };
  $("cancel").onclick = $("cancel-share").onclick = () => flow.cancel();
  $("copy").onclick = () => void copyLink();
  $("link").addEventListener("focus", () => ($("link") as HTMLInputElement).select());
  $("share-button").onclick = () => {
    const link = ($("link") as HTMLInputElement).value;
    void navigator.share?.({ title: "Files for you (ferry)", text: "Open this link to receive the files I'm sending:", url: link }).catch(() => {});
  };
  flow.run().then(
    () => {
      running = false;
      viewDone(card, last?.roots ?? [], total, files.length);
    },
    (e: FerryError) => {
      running = false;
      $("cancel").hidden = true;
      $("share").hidden = true;
      if (e instanceof TooLarge) {
        // Nothing was offered: go back to choosing, and say why.
        backToPicking();
        notice(tooLarge(e.total, e.max));
      } else if (e.code === 4009 && e.reason === forbidden.signIn) {
        showError(
          "This server lets only signed-in people create links (your sign-in may have expired). Sign in and try again.",
          "error",
          [{ label: "Sign in to send", href: signInHref(me) }, { label: "Start over", href: "" }],
        );
      } else if (e.code === 4009 && e.reason === forbidden.network) {
        showError("This server does not let you create links from your network. Ask its operator if you think this is wrong.");
      } else if (e.code === 4005) {
        showError("The link expired before anyone opened it. Start over to create a new one.");
      } else if (e.code === 4007) {
        showError("Someone opened your link with a wrong secret, so the link was closed for safety. Nothing was sent. Start over to create a new link.");
      } else {
        showError(e.message, e.outcome === "canceled" ? "canceled" : "error");
      }
    },
  );
}

function backToPicking(): void {
  for (const id of ["files", "conn", "share", "phrase-box", "total"]) $(id).hidden = true;
  ($("file-input") as HTMLInputElement).value = "";
  ($("dir-input") as HTMLInputElement).value = "";
  ($("relay-only") as HTMLInputElement).disabled = false;
  viewIdle();
}

function canShare(link: string): boolean {
  if (typeof navigator.share !== "function") return false;
  try {
    return navigator.canShare?.({ url: link }) ?? true;
  } catch {
    return false;
  }
}

async function copyLink(): Promise<void> {
  const input = $("link") as HTMLInputElement;
  const button = $("copy");
  try {
    await navigator.clipboard.writeText(input.value);
    button.textContent = "Copied";
    announce("Link copied");
    setTimeout(() => (button.textContent = "Copy link"), 2000);
  } catch {
    // No clipboard permission: select the link so it can be copied by hand.
    input.focus();
    input.select();
    announce("Press Control+C (or Command+C) to copy the selected link");
  }
}
