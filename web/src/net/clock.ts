// Clock is the time the connection driver and the path meter run on: the
// page's timers, or a fake one in the unit tests, which moves only when a
// test says so.
export interface Clock {
  now(): number;
  // after calls f in ms milliseconds unless the returned function cancels
  // it first.
  after(ms: number, f: () => void): () => void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  after(ms, f) {
    const t = setTimeout(f, ms);
    return () => clearTimeout(t);
  },
};

// every calls f every ms milliseconds until the returned function stops it.
export function every(clock: Clock, ms: number, f: () => void): () => void {
  let cancel = (): void => {};
  let stopped = false;
  const arm = (): void => {
    cancel = clock.after(ms, () => {
      if (stopped) return;
      arm();
      f();
    });
  };
  arm();
  return () => {
    stopped = true;
    cancel();
  };
}
