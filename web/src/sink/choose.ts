// Choosing where received files go, by feature (never by user agent):
// 1. File System Access API: a save dialog (one file) or a folder (several);
// 2. else a streaming download through the service worker: the file
//    itself, or several files (a folder) as one .zip archive;
// 3. else memory, up to memoryCap, with a clear message beyond it.
import type { Manifest } from "../protocol/control";
import { FerryError } from "../protocol/errors";
import type { Sink } from "../transfer/receiver";
import type { WorkerClient } from "../transfer/worker_client";
import { zipLength } from "./zip";

export const memoryCap = 512 << 20;
const startTimeout = 5000;

interface PickerWindow {
  showSaveFilePicker?: (o?: { suggestedName?: string }) => Promise<FileSystemFileHandle>;
  showDirectoryPicker?: (o?: { mode?: "read" | "readwrite"; id?: string }) => Promise<FileSystemDirectoryHandle>;
}

export type SaveMode = "file" | "folder" | "download" | "zip" | "memory";

// saveMode tells which way this browser will save these files.
export function saveMode(man: Manifest, sw: ServiceWorkerRegistration | null): SaveMode {
  const w = window as unknown as PickerWindow;
  const one = man.files.length === 1;
  if (one && typeof w.showSaveFilePicker === "function") return "file";
  if (!one && typeof w.showDirectoryPicker === "function") return "folder";
  if (sw?.active) return one ? "download" : "zip";
  return "memory";
}

// zipName names the archive after the folder that holds every file, if
// there is one.
export function zipName(man: Manifest): string {
  const first = man.files[0]!.path.split("/")[0]!;
  const oneFolder = man.files.every((f) => f.path.startsWith(first + "/"));
  return `${oneFolder ? first : "ferry-files"}.zip`;
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

// pickSink must be called from the Accept click (pickers need a user
// gesture). It resolves null if the person closed the picker.
export async function pickSink(
  man: Manifest,
  worker: WorkerClient,
  sw: ServiceWorkerRegistration | null,
  onBlob: (file: number, name: string, blob: Blob) => void,
): Promise<Sink | null> {
  const w = window as unknown as PickerWindow;
  const mode = saveMode(man, sw);
  const plain = (spec: Sink["spec"]): Sink => ({ spec, beforeFile() {}, finished() {} });
  try {
    if (mode === "file") return plain({ kind: "fsa-file", handle: await w.showSaveFilePicker!({ suggestedName: baseName(man.files[0]!.path) }) });
    if (mode === "folder") return plain({ kind: "fsa-dir", dir: await w.showDirectoryPicker!({ mode: "readwrite", id: "ferry" }) });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") return null;
    console.error("ferry: picker failed", e);
    throw new FerryError("The browser did not let this page save there. Try another place.");
  }
  if (mode === "download") {
    const s = new StreamSink(man, worker, sw!);
    if (await s.start(0)) return s;
    console.warn("ferry: the service worker did not serve the download; keeping the files in memory");
  }
  if (mode === "zip") {
    // client-zip writes a zip64 end record only for big files, so an
    // archive of more entries than a plain zip can count would not open.
    if (man.files.length > 65535) {
      throw new FerryError(
        "This browser cannot save folders, and these are too many files for one zip archive (at most 65,535). Open the link in Chrome or Edge on a computer, or use the ferry command-line tool.",
      );
    }
    const name = zipName(man);
    const dl = await startDownload(sw!, worker, 0, name, zipLength(man.files));
    let verified = 0;
    if (dl.ok) {
      return {
        spec: { kind: "zip" },
        beforeFile() {},
        finished() {
          if (++verified === man.files.length) dl.stop();
        },
      };
    }
    dl.stop();
    console.warn("ferry: the service worker did not serve the archive; keeping the files in memory");
  }
  if (man.totalSize > memoryCap) {
    throw new FerryError(
      `This browser cannot save large files directly to disk, and ${Math.round(man.totalSize / 2 ** 20)} MiB is too much to hold in memory (the limit is ${memoryCap >> 20} MiB). Open the link in Chrome or Edge, or use the ferry command-line tool.`,
    );
  }
  return {
    spec: { kind: "memory" },
    beforeFile() {},
    finished(file, blob) {
      if (blob) onBlob(file, baseName(man.files[file]!.path), blob);
    },
  };
}

// StreamSink starts one service-worker download per file, in order. The
// worker writes into a MessagePort; the service worker serves it.
class StreamSink implements Sink {
  spec = { kind: "stream" } as const;
  private begun = new Set<number>();
  private stops: (() => void)[] = [];

  constructor(
    private man: Manifest,
    private worker: WorkerClient,
    private reg: ServiceWorkerRegistration,
  ) {}

  beforeFile(file: number): void {
    if (this.begun.has(file)) return;
    void this.start(file).then((ok) => {
      if (!ok) console.error(`ferry: the download of file ${file} did not start`);
    });
  }

  finished(file: number): void {
    if (file === this.man.files.length - 1) for (const s of this.stops) s();
  }

  // start registers the download of file with the service worker and
  // resolves whether the service worker served it.
  async start(file: number): Promise<boolean> {
    this.begun.add(file);
    const f = this.man.files[file]!;
    const name = this.man.files.length === 1 ? baseName(f.path) : f.path.replaceAll("/", "_");
    const dl = await startDownload(this.reg, this.worker, file, name, f.size);
    this.stops.push(dl.stop);
    return dl.ok;
  }
}

// startDownload registers a streaming download with the service worker
// (the transfer worker writes into a MessagePort, posted to it as file's
// port), opens it in a hidden frame and resolves whether the service
// worker really served it. stop() ends the keep-alive pings.
async function startDownload(
  reg: ServiceWorkerRegistration,
  worker: WorkerClient,
  file: number,
  name: string,
  size: number,
): Promise<{ ok: boolean; stop: () => void }> {
  const active = reg.active;
  if (!active) return { ok: false, stop() {} };
  const id = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
  const ch = new MessageChannel();
  worker.post({ t: "rx-port", file, port: ch.port1 }, [ch.port1]);
  // A service worker may be stopped when idle; a download keeps it busy,
  // and these pings keep it alive between chunks.
  const keepAlive = window.setInterval(() => reg.active?.postMessage({ t: "ping" }), 10_000);
  const stop = () => clearInterval(keepAlive);
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false), startTimeout);
    const onMsg = (e: MessageEvent<{ t?: string; id?: string }>) => {
      if (e.data?.id !== id) return;
      if (e.data.t === "registered") {
        const frame = document.createElement("iframe");
        frame.hidden = true;
        frame.title = "download";
        frame.src = `/dl/${id}/${encodeURIComponent(name)}`;
        document.body.append(frame);
      } else if (e.data.t === "started") {
        done(true);
      }
    };
    const done = (ok: boolean) => {
      clearTimeout(timer);
      navigator.serviceWorker.removeEventListener("message", onMsg);
      resolve(ok);
    };
    navigator.serviceWorker.addEventListener("message", onMsg);
    navigator.serviceWorker.startMessages();
    active.postMessage({ t: "dl", id, name, size }, [ch.port2]);
  });
  return { ok, stop };
}

// registerServiceWorker prepares streaming downloads where they are needed.
export async function registerServiceWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!("serviceWorker" in navigator)) return null;
  try {
    await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    return await navigator.serviceWorker.ready;
  } catch (e) {
    console.warn("ferry: no service worker", e);
    return null;
  }
}
