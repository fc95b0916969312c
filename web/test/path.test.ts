// Unit tests of the path a transfer takes: the selected candidate pair
// from a stats report, the bytes per path over connection generations,
// and following a connection that moves from the relay to a direct pair.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PathMeter, PathTally, samplePath, type PathSample, type Sampler } from "../src/net/path";

type Rec = Record<string, unknown>;

// report builds a stats report: candidates by id, pairs by id (local and
// remote candidate ids, bytes), and the transport's selected pair.
function report(selected: string, pairs: Record<string, [string, string, number, number]>, extra: Rec[] = []): Map<string, Rec> {
  const m = new Map<string, Rec>();
  const cands: Record<string, string> = { lh: "host", ls: "srflx", lr: "relay", rh: "host", rs: "srflx", rr: "relay", rp: "prflx" };
  for (const [id, type] of Object.entries(cands)) m.set(id, { id, type: id[0] === "l" ? "local-candidate" : "remote-candidate", candidateType: type });
  for (const [id, [l, r, sent, recv]] of Object.entries(pairs)) {
    m.set(id, { id, type: "candidate-pair", localCandidateId: l, remoteCandidateId: r, bytesSent: sent, bytesReceived: recv, state: "succeeded" });
  }
  m.set("T", { id: "T", type: "transport", ...(selected ? { selectedCandidatePairId: selected } : {}) });
  for (const r of extra) m.set(r.id as string, r);
  return m;
}

test("the selected pair decides the path; bytes are counted per kind of pair", () => {
  const pairs: Record<string, [string, string, number, number]> = {
    p1: ["ls", "rs", 1000, 10],
    p2: ["lh", "rr", 300, 3],
    p3: ["lr", "rs", 200, 2],
    p4: ["lh", "rp", 5, 5],
  };
  assert.deepEqual(samplePath(report("p1", pairs)), { path: "direct", direct: 1020, relay: 505 });
  assert.equal(samplePath(report("p2", pairs)).path, "relay", "a relayed remote candidate");
  assert.equal(samplePath(report("p3", pairs)).path, "relay", "a relayed local candidate");
  assert.equal(samplePath(report("p4", pairs)).path, "direct", "peer-reflexive is direct");
  assert.deepEqual(samplePath(report("", {})), { path: "", direct: 0, relay: 0 }, "nothing selected yet");
});

test("without a selected pair id, the nominated succeeded pair counts", () => {
  const m = report("", { p1: ["lr", "rs", 1, 1] });
  m.set("p1", { ...m.get("p1"), nominated: true });
  assert.equal(samplePath(m).path, "relay");
});

test("the reported path is the one that carried most bytes over all generations", () => {
  const t = new PathTally();
  assert.equal(t.most("relay"), "relay", "no bytes yet: the fallback");
  t.add(1, { path: "relay", direct: 0, relay: 500 });
  t.add(1, { path: "direct", direct: 400, relay: 600 }); // later sample of the same generation
  assert.equal(t.most("direct"), "relay");
  t.add(2, { path: "direct", direct: 300, relay: 0 });
  assert.equal(t.most("relay"), "direct", "700 direct against 600 relayed");
});

// fakeLink returns the samples it is given, one per call, repeating the last.
function fakeLink(gen: number, samples: PathSample[]): Sampler & { failed: boolean; calls: number } {
  const l = {
    gen,
    failed: false,
    calls: 0,
    sample: async () => samples[Math.min(l.calls++, samples.length - 1)] ?? null,
  };
  return l;
}

test("the meter follows a connection from the relay to a direct pair", async () => {
  const seen: string[] = [];
  const meter = new PathMeter((p) => seen.push(p), 60_000);
  const link = fakeLink(1, [
    { path: "relay", direct: 0, relay: 1000 },
    { path: "direct", direct: 5000, relay: 1200 },
    { path: "direct", direct: 9000, relay: 1200 },
  ]);
  assert.equal(await meter.follow(link), "relay");
  await meter.sample();
  await meter.sample();
  meter.stop();
  assert.deepEqual(seen, ["relay", "direct"]);
  assert.equal(meter.current, "direct");
  assert.equal(meter.reported, "direct");
});

test("a connection that went down says nothing about the path in use", async () => {
  const seen: string[] = [];
  const meter = new PathMeter((p) => seen.push(p), 60_000);
  const old = fakeLink(1, [{ path: "direct", direct: 10, relay: 0 }]);
  await meter.follow(old);
  old.failed = true;
  const next = fakeLink(2, [{ path: "relay", direct: 0, relay: 50 }]);
  await meter.follow(next);
  meter.stop();
  assert.deepEqual(seen, ["direct", "relay"]);
  assert.equal(meter.reported, "relay", "50 relayed bytes against 10 direct");
});
