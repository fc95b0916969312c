// Timing of connection attempts and reconnection, shared by both roles.

// connectTimeout bounds one attempt to bring a connection generation up.
export const connectTimeout = 30_000;
// reconnectFor is how long a page keeps trying after losing the other side.
export const reconnectFor = 2 * 60_000;

// backoff waits before the next reconnection attempt: 0.5 s doubling to 5 s.
export function backoff(since: number): Promise<void> {
  const elapsed = performance.now() - since;
  const ms = Math.min(5000, 500 * 2 ** Math.floor(Math.log2(1 + elapsed / 500)));
  return new Promise((r) => setTimeout(r, ms));
}

// until waits for p, at most ms.
export function until(p: Promise<unknown>, ms: number): Promise<void> {
  return Promise.race([p.then(() => {}), new Promise<void>((r) => setTimeout(r, ms))]);
}
