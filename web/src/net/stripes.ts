// How many connections a generation stripes the chunks over (PROTOCOL.md
// §3.4): the same rule as the Go peer's proto.StripeCount, with its
// constants (testdata/vectors/stripes.json).
import { maxStripes, stripeFullRttMs, stripeMinBytes } from "../protocol/constants_gen";

// stripeCount is the number of connections, main included, for a path
// whose selected pair has round trip time rttMs (0: unknown) with
// remaining bytes still to send.
export function stripeCount(rttMs: number, remaining: number): number {
  if (remaining < stripeMinBytes) return 1;
  if (rttMs < stripeFullRttMs) return maxStripes / 2;
  return maxStripes;
}

// stripeKeepsIceUrl: whether a stripe connection keeps the main one's ICE
// server URL u: STUN always, TURN over UDP only when the generation is
// relayed (Go: proto.StripeKeepsICEURL; vectors stripe_config.json).
export function stripeKeepsIceUrl(u: string, relayed: boolean): boolean {
  if (u.startsWith("stun:") || u.startsWith("stuns:")) return true;
  if (!relayed || !u.startsWith("turn:")) return false;
  const q = u.indexOf("?");
  const params = q < 0 ? "" : u.slice(q + 1);
  return params === "" || params === "transport=udp";
}

// relayedStripeOffer: a stripe offer with relay candidates stripes a
// relayed generation (Go: proto.RelayedStripeOffer).
export function relayedStripeOffer(sdp: string): boolean {
  return sdp.includes(" typ relay");
}
