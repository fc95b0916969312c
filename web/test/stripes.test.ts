// Striping (PROTOCOL.md §3.4): the stripe count against the shared
// vectors, and how the sender picks a channel for each chunk.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { relayedStripeOffer, stripeCount, stripeKeepsIceUrl } from "../src/net/stripes";
import { pickChannel } from "../src/transfer/sender";

const dir = new URL("../../testdata/vectors/", import.meta.url);

test("stripes.json", () => {
  const vs = JSON.parse(readFileSync(new URL("stripes.json", dir), "utf8")) as { rttMs: number; remaining: number; want: number }[];
  assert.ok(vs.length > 0);
  for (const v of vs) assert.equal(stripeCount(v.rttMs, v.remaining), v.want, JSON.stringify(v));
});

test("stripe_config.json", () => {
  const v = JSON.parse(readFileSync(new URL("stripe_config.json", dir), "utf8")) as {
    urls: { url: string; relayed: boolean; keep: boolean }[];
    offers: { sdp: string; relayed: boolean }[];
  };
  assert.ok(v.urls.length > 0 && v.offers.length > 0);
  for (const u of v.urls) assert.equal(stripeKeepsIceUrl(u.url, u.relayed), u.keep, JSON.stringify(u));
  for (const o of v.offers) assert.equal(relayedStripeOffer(o.sdp), o.relayed, JSON.stringify(o));
});

test("a chunk goes on the least buffered channel under the high-water mark", () => {
  const ch = (...b: number[]) => b.map((bufferedAmount) => ({ bufferedAmount }));
  assert.equal(pickChannel(ch(0), 10), 0);
  assert.equal(pickChannel(ch(10), 10), -1, "the main one full, no stripes");
  assert.equal(pickChannel(ch(5, 3, 7), 10), 1);
  assert.equal(pickChannel(ch(12, 11, 9), 10), 2);
  assert.equal(pickChannel(ch(12, 11, 10), 10), -1, "all full");
  assert.equal(pickChannel(ch(2, 2), 10), 0, "ties go to the first");
});
