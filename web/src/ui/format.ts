// Human-readable sizes, rates and durations.

// Sizes and counts keep their unit on the same line (no-break space).
const nb = "\u00a0";

export function formatBytes(n: number): string {
  if (n < 1000) return `${n}${nb}B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v < 100 ? v.toFixed(1) : Math.round(v)}${nb}${units[u]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e6).toFixed(1)}${nb}MB/s`;
}

export function formatEta(seconds: number): string {
  if (!isFinite(seconds) || seconds <= 0) return "";
  if (seconds < 60) return `${Math.ceil(seconds)} s left`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s left`;
  return `${Math.floor(seconds / 3600)} h ${Math.ceil((seconds % 3600) / 60)} min left`;
}

export function plural(n: number, word: string): string {
  return `${n.toLocaleString("en")}${nb}${word}${n === 1 ? "" : "s"}`;
}

// formatClock is a local time of day, e.g. "14:05" or "2:05 PM".
export function formatClock(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
}
