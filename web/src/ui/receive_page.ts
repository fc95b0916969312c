// The receive page: open the link from the fragment, show what is offered,
// save it where the person chooses, verified.
import type { Manifest } from "../protocol/control";
import { LinkError, parseTicket } from "../protocol/ticket";
import { pickSink, registerServiceWorker, saveMode } from "../sink/choose";
import { FerryError } from "../transfer/errors";
import type { Sink } from "../transfer/receiver";
import { ReceiveFlow } from "../transfer/receive_flow";
import { formatBytes } from "./format";
import { $, ProgressView, setState, showError, showPath, showPhrase, supportProblem } from "./view";

export function receivePage(): void {
  const problem = supportProblem();
  if (problem) {
    showError(problem);
    return;
  }
  const frag = location.hash.replace(/^#/, "");
  if (frag === "") {
    showError("This link is incomplete: the part after “#” is missing. Ask the sender to copy the whole link.");
    return;
  }
  let ticket;
  try {
    ticket = parseTicket(decodeURIComponent(frag));
  } catch (e) {
    showError(e instanceof LinkError ? e.message : "This is not a valid ferry link.");
    return;
  }
  const relayOnly = new URLSearchParams(location.search).get("relay") === "1";
  const swReady = registerServiceWorker();
  setState("waiting", "Connecting to the sender…");
  let progress: ProgressView | null = null;
  const flow = new ReceiveFlow(location.origin, ticket, () => relayOnly, {
    paired() {
      setState("paired", "Securing the connection…");
    },
    phrase(words) {
      showPhrase(words);
      setState("connecting", "Connecting to the sender…");
    },
    connected(path) {
      showPath(path);
    },
    reconnecting() {
      setState("reconnecting", "The connection dropped. Reconnecting…");
    },
    manifest: async (m) => review(m, flow, await swReady),
    progress(p) {
      progress ??= new ProgressView();
      progress.update(p);
      if (document.body.dataset.state !== "transferring") setState("transferring", "Receiving and verifying…");
    },
  });
  (window as unknown as { ferryDebug: unknown }).ferryDebug = { flow, bench: (mib: number) => flow.worker.bench(mib) };
  const cancel = $("cancel") as HTMLButtonElement;
  cancel.onclick = () => flow.cancel();
  flow.run().then(
    () => {
      cancel.hidden = true;
      setState("done", "Done: every file was received and verified.");
    },
    (e: FerryError) => {
      cancel.hidden = true;
      $("offer").hidden = true;
      showError(e.message, e.outcome === "canceled" ? "canceled" : "error");
    },
  );
}

// review shows the offer and resolves with the chosen sink, or null when
// the person declines.
function review(m: Manifest, flow: ReceiveFlow, sw: ServiceWorkerRegistration | null): Promise<Sink | null> {
  const list = $("offer-list");
  list.replaceChildren(
    ...m.files.slice(0, 500).map((f) => {
      const li = document.createElement("li");
      li.textContent = `${f.path} — ${formatBytes(f.size)}`;
      return li;
    }),
  );
  if (m.files.length > 500) {
    const li = document.createElement("li");
    li.textContent = `… and ${m.files.length - 500} more`;
    list.append(li);
  }
  $("offer-total").textContent = `${m.files.length} file${m.files.length === 1 ? "" : "s"}, ${formatBytes(m.totalSize)} in total`;
  const mode = saveMode(m, sw);
  $("offer-mode").textContent = {
    file: "You choose where to save it; it is written to disk as it arrives.",
    folder: "You choose a folder; the files are written to disk as they arrive.",
    download: "The files are saved as downloads as they arrive.",
    memory: "This browser keeps the files in memory until they are complete, then offers them for saving.",
  }[mode];
  $("offer").hidden = false;
  setState("review", "The sender offers these files:");
  const accept = $("accept") as HTMLButtonElement;
  const decline = $("decline") as HTMLButtonElement;
  accept.focus();
  return new Promise((resolve) => {
    accept.onclick = () => {
      accept.disabled = true;
      pickSink(m, flow.worker, sw, offerBlob).then(
        (sink) => {
          accept.disabled = false;
          if (!sink) return; // picker closed: ask again
          $("offer").hidden = true;
          $("cancel").hidden = false;
          setState("transferring", "Receiving and verifying…");
          resolve(sink);
        },
        (e: unknown) => {
          accept.disabled = false;
          showError(e instanceof FerryError ? e.message : "Could not prepare saving the files.", "review");
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
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.textContent = `Save ${name} (${formatBytes(blob.size)})`;
  const li = document.createElement("li");
  li.append(a);
  $("saved-list").append(li);
  $("saved").hidden = false;
}
