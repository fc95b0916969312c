// Service worker: streams a download to disk while it is being received,
// for browsers without the File System Access API. The page registers a
// download with a MessagePort; the worker writes chunks into the port; a
// hidden iframe navigates to /dl/<id>/<name>, which this service worker
// answers with a ReadableStream fed from the port. Each chunk is
// acknowledged when the stream pulls it, which is the backpressure.
const sw = self as unknown as ServiceWorkerGlobalScope;

interface Download {
  name: string;
  size: number;
  port: MessagePort;
  client: string;
  queue: Uint8Array[];
  ended: boolean;
  aborted: boolean;
  wake: (() => void) | null;
}

const downloads = new Map<string, Download>();

sw.addEventListener("install", () => {
  void sw.skipWaiting();
});

sw.addEventListener("activate", (e) => {
  e.waitUntil(sw.clients.claim());
});

sw.addEventListener("message", (e) => {
  const m = e.data as { t?: string; id?: string; name?: string; size?: number };
  if (m?.t === "ping") return; // keeps this worker alive during long transfers
  if (m?.t !== "dl" || typeof m.id !== "string" || !e.ports[0]) return;
  const port = e.ports[0];
  const d: Download = {
    name: String(m.name ?? "download"),
    size: Number(m.size ?? 0),
    port,
    client: (e.source as Client | null)?.id ?? "",
    queue: [],
    ended: false,
    aborted: false,
    wake: null,
  };
  port.onmessage = (ev: MessageEvent<{ t: string; buf?: ArrayBuffer; off?: number; len?: number }>) => {
    const x = ev.data;
    if (x.t === "data" && x.buf) d.queue.push(new Uint8Array(x.buf, x.off ?? 0, x.len));
    else if (x.t === "end") d.ended = true;
    else if (x.t === "abort") d.aborted = true;
    const w = d.wake;
    d.wake = null;
    w?.();
  };
  downloads.set(m.id, d);
  // The page opens the download only after this, so the fetch below finds it.
  (e.source as Client | null)?.postMessage({ t: "registered", id: m.id });
});

sw.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (url.origin !== sw.location.origin || !url.pathname.startsWith("/dl/")) return;
  const id = url.pathname.split("/")[2] ?? "";
  const d = downloads.get(id);
  if (!d) {
    e.respondWith(new Response("This download is no longer available.", { status: 404, headers: { "Content-Type": "text/plain; charset=utf-8" } }));
    return;
  }
  downloads.delete(id);
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        while (d.queue.length === 0 && !d.ended && !d.aborted) await new Promise<void>((r) => (d.wake = r));
        if (d.aborted) {
          c.error(new Error("transfer failed"));
          return;
        }
        const b = d.queue.shift();
        if (b) {
          c.enqueue(b);
          d.port.postMessage({ t: "ack", bytes: b.length });
        } else {
          c.close();
        }
      },
      cancel() {
        d.aborted = true;
        d.port.postMessage({ t: "canceled" });
      },
    },
    { highWaterMark: 4 },
  );
  const headers = new Headers({
    "Content-Type": "application/octet-stream",
    "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(d.name)}`,
    "Content-Length": String(d.size),
    "X-Content-Type-Options": "nosniff",
  });
  e.respondWith(new Response(stream, { headers }));
  // Tell the page the download really started (else it falls back).
  e.waitUntil(
    (async () => {
      const c = d.client ? await sw.clients.get(d.client) : undefined;
      c?.postMessage({ t: "started", id });
      d.port.postMessage({ t: "started" });
    })(),
  );
});
