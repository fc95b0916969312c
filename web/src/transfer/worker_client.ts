// WorkerClient owns the transfer worker on the page side.
import type { Dropped, FromWorker, ToWorker } from "./worker_api";

export class WorkerClient {
  private w: Worker;
  private nextId = 1;
  private waiting = new Map<number, (m: FromWorker) => void>();
  // Messages not answering a request (receiver events) go here.
  onEvent: (m: FromWorker) => void = () => {};

  constructor() {
    this.w = new Worker("/worker.js", { name: "ferry-transfer" });
    this.w.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if ((m.t === "read" || m.t === "read-error" || m.t === "sync") && this.waiting.has(m.id)) {
        const f = this.waiting.get(m.id)!;
        this.waiting.delete(m.id);
        f(m);
        return;
      }
      this.onEvent(m);
    };
    this.w.onerror = (e) => {
      console.error("ferry: worker failed", e);
      this.onEvent({ t: "rx-error", message: "worker failed" });
    };
  }

  post(m: ToWorker, transfer: Transferable[] = []): void {
    this.w.postMessage(m, transfer);
  }

  // request posts a message with a fresh id and resolves with the answer.
  request<T extends FromWorker>(make: (id: number) => ToWorker): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, (m) => resolve(m as T));
      this.post(make(id));
    });
  }

  // sync waits until the worker has handled everything posted so far and
  // returns the held-back chunks sequential sinks dropped.
  async sync(): Promise<Dropped[]> {
    const m = await this.request<{ t: "sync"; id: number; dropped: Dropped[] }>((id) => ({ t: "sync", id }));
    return m.dropped;
  }

  // bench measures BLAKE3 speed in the worker (MB/s), for diagnostics.
  bench(mib: number): Promise<number> {
    return new Promise((resolve) => {
      const prev = this.onEvent;
      this.onEvent = (m) => {
        if (m.t === "bench") {
          this.onEvent = prev;
          resolve(m.mbps);
        } else prev(m);
      };
      this.post({ t: "bench", mib });
    });
  }

  terminate(): void {
    this.w.terminate();
  }
}
