// Which way a transfer's bytes go: straight between the two devices
// ("direct") or through a TURN relay ("relay"). The ICE agent decides and
// may change its mind while the transfer runs: Chromium uses the first
// candidate pair that answers, which can be a relayed one (a check through
// the relay needs no hole punched in the other side's NAT, so it may
// answer before the direct pair does when a packet is lost or late), and
// moves to the better direct pair when that one answers, a fraction of a
// second or a few seconds later; a broken path can make it go the other
// way. So the pages follow the selected pair while they transfer instead
// of reading it once.

import { every, realClock, type Clock } from "./clock";

export type Path = "direct" | "relay";

export interface PathSample {
  // path is that of the selected candidate pair, "" when there is none
  // (yet).
  path: Path | "";
  // direct and relay are the bytes sent and received so far over pairs of
  // each kind.
  direct: number;
  relay: number;
  // rttMs is the selected pair's current round trip time in milliseconds,
  // when the stats have it.
  rttMs?: number;
}

// StatsLike is the part of an RTCStatsReport samplePath reads (a Map of
// stats by id is one too, for tests).
export interface StatsLike {
  get(id: string): Record<string, unknown> | undefined;
  forEach(f: (r: Record<string, unknown>) => void): void;
}

// samplePath reads the selected pair and the bytes per kind of pair from
// a stats report.
export function samplePath(stats: StatsLike): PathSample {
  const relayed = (pair: Record<string, unknown>): boolean => {
    const local = stats.get(pair.localCandidateId as string);
    const remote = stats.get(pair.remoteCandidateId as string);
    return local?.candidateType === "relay" || remote?.candidateType === "relay";
  };
  let pairId = "";
  let nominated: Record<string, unknown> | undefined;
  const out: PathSample = { path: "", direct: 0, relay: 0 };
  stats.forEach((r) => {
    if (r.type === "transport" && typeof r.selectedCandidatePairId === "string" && r.selectedCandidatePairId) {
      pairId = r.selectedCandidatePairId;
    } else if (r.type === "candidate-pair") {
      const n = (Number(r.bytesSent) || 0) + (Number(r.bytesReceived) || 0);
      if (relayed(r)) out.relay += n;
      else out.direct += n;
      if (r.nominated === true && r.state === "succeeded") nominated = r;
    }
  });
  const pair = (pairId ? stats.get(pairId) : undefined) ?? nominated;
  if (pair) {
    out.path = relayed(pair) ? "relay" : "direct";
    if (typeof pair.currentRoundTripTime === "number") out.rttMs = pair.currentRoundTripTime * 1000;
  }
  return out;
}

// PathTally adds up the bytes per path over a transfer's connection
// generations; each generation's counters only grow, so the latest sample
// of each counts.
export class PathTally {
  private gens = new Map<number, { direct: number; relay: number }>();

  add(gen: number, s: PathSample): void {
    this.gens.set(gen, { direct: s.direct, relay: s.relay });
  }

  // most is the path that carried most of the bytes, or fallback before
  // any byte moved.
  most(fallback: Path): Path {
    let direct = 0;
    let relay = 0;
    for (const g of this.gens.values()) {
      direct += g.direct;
      relay += g.relay;
    }
    if (direct + relay === 0) return fallback;
    return relay > direct ? "relay" : "direct";
  }
}

// Sampler is what PathMeter follows: one connection generation.
export interface Sampler {
  readonly gen: number;
  readonly failed: boolean;
  sample(): Promise<PathSample | null>;
}

// PathMeter follows the current connection: it samples its path when it
// comes up, every `every` ms while it lives, and on demand (at the end),
// tells `changed` when the selected pair's path changes, and keeps the
// bytes per path for the report.
export class PathMeter {
  private followed: Sampler | null = null;
  private timer: (() => void) | undefined;
  private tally = new PathTally();
  current: Path | "" = "";

  constructor(
    private changed: (p: Path) => void,
    private period = 1000,
    private clock: Clock = realClock,
  ) {}

  // follow samples g now and then periodically, until stop() or the
  // next follow(); it resolves with the path once the first sample is in.
  async follow(g: Sampler): Promise<Path | ""> {
    this.stop();
    this.followed = g;
    await this.sample();
    if (this.followed === g && !g.failed) this.timer = every(this.clock, this.period, () => void this.sample());
    return this.current;
  }

  // sample reads the followed connection's path and bytes.
  async sample(): Promise<void> {
    const g = this.followed;
    if (!g || g.failed) return;
    const s = await g.sample();
    if (!s) return;
    this.tally.add(g.gen, s);
    // A connection that went down meanwhile no longer says anything about
    // the path in use.
    if (g !== this.followed || g.failed) return;
    if (s.path && s.path !== this.current) {
      this.current = s.path;
      this.changed(s.path);
    }
  }

  stop(): void {
    this.timer?.();
    this.timer = undefined;
  }

  // reported is the path a report names (PROTOCOL.md §2.5): the one that
  // carried most of the transfer's bytes.
  get reported(): Path {
    return this.tally.most(this.current || "direct");
  }
}
