// The send page: pick files, get a link and QR code, watch the transfer.
import { FerryError } from "../transfer/errors";
import { SendFlow } from "../transfer/send_flow";
import type { Source } from "../transfer/sender";
import { formatBytes } from "./format";
import { qrSVG } from "./qr";
import { $, ProgressView, setState, showError, showPath, showPhrase, supportProblem } from "./view";

export function sendPage(): void {
  const problem = supportProblem();
  if (problem) {
    showError(problem);
    ($("file-input") as HTMLInputElement).disabled = true;
    return;
  }
  setState("idle");
  const relay = $("relay-only") as HTMLInputElement;
  if (new URLSearchParams(location.search).get("relay") === "1") relay.checked = true;
  const fileInput = $("file-input") as HTMLInputElement;
  const dirInput = $("dir-input") as HTMLInputElement;
  fileInput.addEventListener("change", () => fileInput.files && start(fromList(fileInput.files)));
  dirInput.addEventListener("change", () => dirInput.files && start(fromList(dirInput.files)));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer) void fromDrop(e.dataTransfer).then(start, () => showError("Could not read the dropped files."));
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      fileInput.click();
    }
  });
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

let running = false;

function start(sources: Source[]): void {
  if (running || sources.length === 0) return;
  const seen = new Set<string>();
  for (const s of sources) {
    if (seen.has(s.path.toLowerCase())) {
      showError(`Two files are both named “${s.path}”. Rename one and try again.`);
      return;
    }
    seen.add(s.path.toLowerCase());
  }
  running = true;
  $("pick").hidden = true;
  const list = $("file-list");
  list.replaceChildren(
    ...sources.slice(0, 200).map((s) => {
      const li = document.createElement("li");
      li.textContent = `${s.path} — ${formatBytes(s.file.size)}`;
      return li;
    }),
  );
  const total = sources.reduce((a, s) => a + s.file.size, 0);
  $("files-total").textContent = `${sources.length} file${sources.length === 1 ? "" : "s"}, ${formatBytes(total)}`;
  $("files").hidden = false;
  setState("waiting", "Creating a link…");
  const relay = $("relay-only") as HTMLInputElement;
  let progress: ProgressView | null = null;
  const flow = new SendFlow(sources, location.origin, () => relay.checked, {
    link(link) {
      const input = $("link") as HTMLInputElement;
      input.value = link;
      $("qr").replaceChildren(qrSVG(link));
      $("share").hidden = false;
      setState("waiting", "Waiting for the receiver to open the link. Keep this page open.");
    },
    paired() {
      $("share").hidden = true;
      relay.disabled = true;
      setState("paired", "The receiver opened the link. Securing the connection…");
    },
    phrase(words) {
      showPhrase(words);
      setState("connecting", "Connecting…");
    },
    connected(path) {
      showPath(path);
      setState("transferring", "Waiting for the receiver to accept…");
    },
    reconnecting() {
      setState("reconnecting", "The connection dropped. Reconnecting…");
    },
    progress(p) {
      progress ??= new ProgressView();
      progress.update(p);
      if (p.done > 0 || document.body.dataset.state !== "transferring") setState("transferring", "Sending…");
    },
  });
  (window as unknown as { ferryDebug: unknown }).ferryDebug = { flow };
  const cancel = $("cancel") as HTMLButtonElement;
  cancel.hidden = false;
  cancel.onclick = () => flow.cancel();
  $("copy").onclick = () => {
    const input = $("link") as HTMLInputElement;
    void navigator.clipboard?.writeText(input.value).then(
      () => ($("copy").textContent = "Copied"),
      () => input.select(),
    );
  };
  flow.run().then(
    () => {
      cancel.hidden = true;
      setState("done", `Done: ${formatBytes(flow.totalSize)} sent and verified by the receiver.`);
    },
    (e: FerryError) => {
      cancel.hidden = true;
      $("share").hidden = true;
      if (e.code === 4005) {
        showError("The link expired before anyone opened it. Reload the page to create a new one.");
      } else if (e.code === 4007) {
        showError("Someone opened your link with a wrong secret, so the link was closed for safety. Nothing was sent. Reload the page to create a new link.");
      } else {
        showError(e.message, e.outcome === "canceled" ? "canceled" : "error");
      }
    },
  );
}
