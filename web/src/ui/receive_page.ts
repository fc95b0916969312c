// The receive page: open the link from the fragment, show what is offered
// (names, sizes, total), save it where the person chooses, verified.
import type { Manifest } from "../protocol/control";
import { readToken } from "../crypto/stored";
import { LinkError, parseTicket, type Ticket } from "../protocol/ticket";
import { pickSink, registerServiceWorker, saveMode, zipName, type SaveMode } from "../sink/choose";
import { FerryError } from "../protocol/errors";
import { TooLarge } from "../transfer/errors";
import type { Progress } from "../transfer/progress";
import type { Sink } from "../transfer/receiver";
import { ReceiveFlow } from "../transfer/receive_flow";
import { formatBytes, plural } from "./format";
import { guardUnload } from "./unload";
import { $, commonFolder, h, setState, showError, showPath, showPhrase, supportProblem, TransferCard } from "./view";

// The views: what the page shows at each step (also used by scene.ts).

export function viewOffer(m: Manifest, mode: SaveMode): TransferCard {
  const card = new TransferCard(m.files, m.totalSize, "receive");
  $("files").hidden = false;
  const zip = zipName(m);
  $("offer-mode").textContent = {
    file: "You choose where to save it; it is written to disk as it arrives.",
    folder: "You choose a folder; the files, in their folders, are written into it as they arrive.",
    download: "It is saved to your downloads as it arrives.",
    zip: `This browser cannot save folders, so the files arrive as one archive, ${zip}, saved to your downloads as it arrives.`,
    memory: `This browser keeps the files in memory until they are complete, then offers them for saving (at most ${formatBytes(512 << 20)}).`,
  }[mode];
  $("offer").hidden = false;
  const folder = commonFolder(m.files) !== "";
  setState(
    "review",
    `Someone is sending you ${folder ? "a folder" : m.files.length === 1 ? "a file" : plural(m.files.length, "file")}`,
    "Check the names and sizes. Nothing is saved until you accept.",
  );
  return card;
}

export function viewReceiving(m: Manifest, mode: SaveMode): void {
  $("offer").hidden = true;
  $("cancel").hidden = false;
  const where = mode === "zip" ? ` into ${zipName(m)} in your downloads` : mode === "download" ? " to your downloads" : "";
  setState("transferring", "Receiving…", `Every chunk is checked with BLAKE3 before it is saved${where}. Keep this page open.`);
}

export function viewReconnecting(): void {
  setState("reconnecting", "Reconnecting…", "The connection dropped. It picks up from the verified chunks as soon as it is back.");
}

export function viewDone(card: TransferCard, roots: readonly string[], m: Manifest, mode: SaveMode): void {
  $("cancel").hidden = true;
  card.done(roots);
  const note = $("saved-note");
  note.textContent = {
    file: "Saved where you chose.",
    folder: "Saved in the folder you chose.",
    download: "Saved in your downloads.",
    zip: `Saved in your downloads as ${zipName(m)}.`,
    memory: "Save the files from here:",
  }[mode];
  note.hidden = false;
  setState(
    "done",
    "Received and verified",
    `Every chunk and ${m.files.length === 1 ? "the file's BLAKE3 root" : `all ${m.files.length} files' BLAKE3 roots`} matched what was sent: ${formatBytes(m.totalSize)} arrived intact.`,
  );
}

const linkTitle = "This link does not work";

// viewReady is the page before anyone asked for the files: it has not
// contacted the server about the link yet.
export function viewReady(): void {
  $("start").hidden = false;
  setState("ready", "Someone wants to send you files", "They come straight from the sender's device, end-to-end encrypted and verified.");
}

export function receivePage(): void {
  const problem = supportProblem();
  if (problem) {
    showError(problem, "error", []);
    return;
  }
  const frag = location.hash.replace(/^#/, "");
  if (frag === "") {
    showError("This link is incomplete: the part after “#” is missing. Ask the sender to copy the whole link.", "error", [], linkTitle);
    return;
  }
  let ticket: Ticket;
  try {
    ticket = parseTicket(decodeURIComponent(frag));
  } catch (e) {
    showError(e instanceof LinkError ? e.message : "This is not a valid ferry link.", "error", [], linkTitle);
    return;
  }
  const swReady = registerServiceWorker();
  viewReady();
  // Joining uses the link up (it works once), so only a person may do it:
  // mail and chat "safe link" scanners open links in headless browsers
  // that run this script, and one that joined on load would burn the link
  // before its receiver saw it. A click or a key press on the button is a
  // trusted event; a script's synthetic click (el.click(), dispatchEvent)
  // is not.
  const button = $("receive") as HTMLButtonElement;
  button.focus({ preventScroll: true });
  const go = (e: MouseEvent) => {
    if (!e.isTrusted) return;
    button.removeEventListener("click", go);
    $("start").hidden = true;
    void storedOrLive(ticket, swReady);
  };
  button.addEventListener("click", go);
}

// storedOrLive asks the server whether the link is a stored transfer
// (PROTOCOL.md §6.5; asking uses nothing up) and otherwise receives live.
async function storedOrLive(ticket: Ticket, swReady: Promise<ServiceWorkerRegistration | null>): Promise<void> {
  let status = 404;
  let code = "";
  try {
    const r = await fetch(`/api/v1/stored/${encodeURIComponent(ticket.id)}`, {
      headers: { "Ferry-Read": await readToken(ticket.secret) },
      cache: "no-store",
    });
    status = r.status;
    if (!r.ok) code = ((await r.json().catch(() => ({}))) as { error?: string }).error ?? "";
  } catch {
    // No answer: try live, which says what is wrong.
  }
  if (status === 404 || status === 405) {
    receive(ticket, swReady);
    return;
  }
  const why: Record<string, string> = {
    expired: "These files were stored on the server for a while, and that time is over. Ask the sender to send them again.",
    used_up: "These files were already downloaded as many times as the sender allowed. Ask the sender to send them again.",
  };
  showError(
    why[code] ??
      "The sender stored these files on the server for you, end-to-end encrypted. This page cannot download stored files yet: receive them with the ferry command-line tool (ferry receive, with this link).",
    "error",
    [],
    why[code] ? linkTitle : "Stored files",
  );
}

// receive joins with the ticket and runs the transfer: a person asked.
function receive(ticket: Ticket, swReady: Promise<ServiceWorkerRegistration | null>): void {
  const relayOnly = new URLSearchParams(location.search).get("relay") === "1";
  // The headline changes now, with the click, not a moment later (on a
  // phone the longer one takes two lines: no layout shift then).
  setState("waiting", "Receive files", "Connecting to the sender…");
  let card: TransferCard | null = null;
  let mode: SaveMode = "memory";
  let last: Progress | null = null;
  let accepted = false;
  let finished = false;
  const flow = new ReceiveFlow(location.origin, ticket, () => relayOnly, {
    paired() {
      setState("paired", "Connecting…", "Securing the connection…");
    },
    phrase(words) {
      showPhrase(words);
      setState("connecting", undefined, "Connecting to the sender…");
    },
    connected(path) {
      showPath(path);
      if (accepted) viewReceiving(flow.receiver!.man!, mode);
    },
    path(path) {
      showPath(path);
    },
    reconnecting() {
      viewReconnecting();
    },
    manifest: async (m) => {
      const sw = await swReady;
      mode = saveMode(m, sw);
      card = viewOffer(m, mode);
      const sink = await review(m, flow, sw);
      if (sink) accepted = true;
      return sink;
    },
    progress(p) {
      last = p;
      card?.update(p);
      if (accepted && document.body.dataset.state !== "transferring") viewReceiving(flow.receiver!.man!, mode);
    },
  });
  (window as unknown as { ferryDebug: unknown }).ferryDebug = { flow, bench: (mib: number) => flow.worker.bench(mib) };
  $("cancel").onclick = () => flow.cancel();
  guardUnload(() => accepted && !finished);
  flow.run().then(
    () => {
      finished = true;
      viewDone(card!, last?.roots ?? [], flow.receiver!.man!, mode);
    },
    (e: FerryError) => {
      finished = true;
      $("cancel").hidden = true;
      $("offer").hidden = true;
      const linkProblem = [4004, 4005, 4006, 4007].includes(e.code) && !accepted;
      const msg =
        e instanceof TooLarge
          ? `The sender offered ${formatBytes(e.total)}, more than this server allows in one transfer (${formatBytes(e.max)}), so the files were declined.`
          : e.message;
      showError(msg, e.outcome === "canceled" ? "canceled" : "error", [], linkProblem ? linkTitle : undefined);
    },
  );
}

// review waits for Accept (resolving with the chosen sink) or Decline
// (null).
function review(m: Manifest, flow: ReceiveFlow, sw: ServiceWorkerRegistration | null): Promise<Sink | null> {
  const accept = $("accept") as HTMLButtonElement;
  const decline = $("decline") as HTMLButtonElement;
  // Keyboard users start on Accept; the page stays scrolled to the top.
  accept.focus({ preventScroll: true });
  return new Promise((resolve) => {
    accept.onclick = () => {
      accept.disabled = true;
      $("error").hidden = true;
      // The total bar takes its place now, while this is the person's own
      // doing, not when the first bytes arrive (no layout shift then).
      $("total").hidden = false;
      pickSink(m, flow.worker, sw, offerBlob).then(
        (sink) => {
          accept.disabled = false;
          if (!sink) {
            $("total").hidden = true;
            return; // picker closed: ask again
          }
          viewReceiving(m, saveMode(m, sw));
          resolve(sink);
        },
        (e: unknown) => {
          $("total").hidden = true;
          accept.disabled = false;
          $("error-text").textContent = e instanceof FerryError ? e.message : "Could not prepare saving the files.";
          $("error-actions").hidden = true;
          $("error").hidden = false;
        },
      );
    };
    decline.onclick = () => {
      $("offer").hidden = true;
      resolve(null);
    };
  });
}

// offerBlob offers a file kept in memory for saving.
function offerBlob(_file: number, name: string, blob: Blob): void {
  const a = h("a", { href: URL.createObjectURL(blob), download: name, class: "button" }, `Save ${name}`);
  a.append(h("span", { class: "muted" }, ` (${formatBytes(blob.size)})`));
  $("saved-list").append(h("li", {}, a));
  $("saved-list").hidden = false;
}
