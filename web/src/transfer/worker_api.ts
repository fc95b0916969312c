// Messages between the page and the transfer worker (src/worker.ts), which
// does the hashing and file I/O so the page stays responsive.

export interface ReadRequest {
  t: "read";
  id: number;
  file: number;
  start: number;
  count: number;
  // hashOnly: the receiver has these chunks; only their hashes are needed.
  hashOnly: boolean;
}

export type SinkSpec =
  | { kind: "fsa-file"; handle: FileSystemFileHandle }
  | { kind: "fsa-dir"; dir: FileSystemDirectoryHandle }
  | { kind: "stream" } // a port per file arrives with "rx-port"
  | { kind: "zip" } // one archive; its port arrives as "rx-port" for file 0
  | { kind: "memory" };

export interface RxFileSpec {
  path: string;
  size: number;
  mtime?: number;
}

// Dropped lists the verified chunks a sequential sink forgot at a sync
// (they were held back, not written); the sender sends them again.
export interface Dropped {
  file: number;
  indices: number[];
}

export type ToWorker =
  | { t: "tx-open"; files: File[]; chunkSize: number }
  | ReadRequest
  | { t: "rx-open"; chunkSize: number; files: RxFileSpec[]; sink: SinkSpec }
  | { t: "rx-port"; file: number; port: MessagePort }
  | { t: "chunk"; file: number; index: number; frame: ArrayBuffer }
  | { t: "finish"; file: number; root: string }
  | { t: "sync"; id: number }
  | { t: "abort" }
  | { t: "bench"; mib: number };

export type FromWorker =
  | { t: "read"; id: number; frames: ArrayBuffer[]; hashes: ArrayBuffer }
  | { t: "read-error"; id: number; changed: boolean }
  | { t: "rx-ready"; error?: string }
  | { t: "committed"; file: number; indices: number[]; bytes: number }
  | { t: "bad"; file: number; index: number }
  | { t: "finished"; file: number; ok: boolean; root: string; blob?: Blob }
  | { t: "rx-error"; message: string }
  | { t: "sync"; id: number; dropped: Dropped[] }
  | { t: "bench"; mbps: number };
