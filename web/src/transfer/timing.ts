// Timing of connection attempts and reconnection, shared by both roles.

// connectTimeout bounds one attempt to bring a connection generation up.
export const connectTimeout = 30_000;
// reconnectFor is how long a page keeps trying after losing the other side.
export const reconnectFor = 2 * 60_000;
// probeEvery is how often a page waiting for the other side checks that
// its signaling connection still answers.
export const probeEvery = 15_000;

// backoff is the wait before the next reconnection attempt, elapsed ms
// after the loss: 0.5 s doubling to 5 s.
export function backoff(elapsed: number): number {
  return Math.min(5000, 500 * 2 ** Math.floor(Math.log2(1 + elapsed / 500)));
}
