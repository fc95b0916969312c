// How many connections a generation stripes the chunks over (PROTOCOL.md
// §3.4): the same rule as the Go peer's proto.StripeCount, with its
// constants (testdata/vectors/stripes.json).
import { maxStripes, stripeFullRttMs, stripeMinBytes, stripeMinRttMs } from "../protocol/constants_gen";

// stripeCount is the number of connections, main included, for a path
// whose selected pair has round trip time rttMs (0: unknown) with
// remaining bytes still to send.
export function stripeCount(rttMs: number, remaining: number): number {
  if (remaining < stripeMinBytes || rttMs < stripeMinRttMs) return 1;
  if (rttMs < stripeFullRttMs) return maxStripes / 2;
  return maxStripes;
}
