// Progress is what both pages show: bytes, rate and time left, in total
// and per file.
export interface Progress {
  total: number;
  done: number; // bytes verified by the receiver (including resumed ones)
  files: number;
  filesDone: number;
  // Per file, in manifest order. The arrays are the engine's own (read
  // them during the callback, do not keep them).
  fileDone: ArrayLike<number>; // bytes
  roots: readonly string[]; // BLAKE3 root once the file is verified, else ""
}

// RateMeter smooths the transfer rate over the last few seconds.
export class RateMeter {
  private samples: { t: number; bytes: number }[] = [];

  add(bytes: number, t = performance.now()): void {
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0]!.t > 3000) this.samples.shift();
  }

  // bytesPerSecond over the window, 0 until there are two samples.
  get bytesPerSecond(): number {
    const s = this.samples;
    if (s.length < 2) return 0;
    const a = s[0]!;
    const b = s[s.length - 1]!;
    const dt = (b.t - a.t) / 1000;
    return dt > 0.2 ? Math.max(0, (b.bytes - a.bytes) / dt) : 0;
  }

  reset(): void {
    this.samples = [];
  }
}
