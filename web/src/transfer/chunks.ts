// Chunk bookkeeping whose size follows what arrived, never the chunk count
// an offer claims (PROTOCOL.md §4.1): a malicious sender may offer one
// 4 TiB file of 1 KiB chunks (2^32 chunks), and anything allocated per
// offered chunk would take the page down.
import type { Range } from "../protocol/control";

// ChunkSet is a set of chunk indices kept as sorted, disjoint,
// non-adjacent half-open runs [starts[k], ends[k]): chunks that arrive in
// order make one run. Like the Go receiver's rangeSet, an index out of
// order costs an insertion into the sorted arrays.
export class ChunkSet {
  private starts: number[] = [];
  private ends: number[] = [];
  size = 0;

  // find returns the first run whose end is >= i (runs.length if none).
  private find(i: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid]! >= i) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  has(i: number): boolean {
    let k = this.find(i);
    if (k < this.ends.length && this.ends[k] === i) k++;
    return k < this.starts.length && this.starts[k]! <= i;
  }

  // add inserts i and reports whether it was new.
  add(i: number): boolean {
    const s = this.starts;
    const e = this.ends;
    const k = this.find(i);
    if (k < e.length && e[k] === i) {
      // Extends run k, perhaps up to run k+1.
      if (k + 1 < s.length && s[k + 1] === i + 1) {
        e[k] = e[k + 1]!;
        s.splice(k + 1, 1);
        e.splice(k + 1, 1);
      } else {
        e[k] = i + 1;
      }
    } else if (k < s.length && s[k]! <= i) {
      return false;
    } else if (k < s.length && s[k] === i + 1) {
      s[k] = i;
    } else if (k === s.length) {
      s.push(i);
      e.push(i + 1);
    } else {
      s.splice(k, 0, i);
      e.splice(k, 0, i + 1);
    }
    this.size++;
    return true;
  }

  // delete removes i and reports whether it was there.
  delete(i: number): boolean {
    if (!this.has(i)) return false;
    const s = this.starts;
    const e = this.ends;
    let k = this.find(i);
    if (e[k] === i) k++;
    const a = s[k]!;
    const b = e[k]!;
    if (a === i && b === i + 1) {
      s.splice(k, 1);
      e.splice(k, 1);
    } else if (a === i) {
      s[k] = i + 1;
    } else if (b === i + 1) {
      e[k] = i;
    } else {
      e[k] = i;
      s.splice(k + 1, 0, i + 1);
      e.splice(k + 1, 0, b);
    }
    this.size--;
    return true;
  }

  get runs(): number {
    return this.starts.length;
  }

  // ranges returns the runs (for accept.resume).
  ranges(): Range[] {
    return this.starts.map((a, k) => [a, this.ends[k]!]);
  }
}

// HashPool holds 32-byte chunk hashes by chunk index in one growing buffer,
// about 60 bytes each instead of a typed array object per hash.
export class HashPool {
  private buf = new Uint8Array(32 * 16);
  private slots = new Map<number, number>();
  private free: number[] = [];
  private used = 0;

  get size(): number {
    return this.slots.size;
  }

  has(i: number): boolean {
    return this.slots.has(i);
  }

  set(i: number, h: Uint8Array): void {
    let slot = this.slots.get(i);
    if (slot === undefined) {
      slot = this.free.pop();
      if (slot === undefined) {
        slot = this.used++;
        if (slot * 32 >= this.buf.length) {
          const b = new Uint8Array(this.buf.length * 2);
          b.set(this.buf);
          this.buf = b;
        }
      }
      this.slots.set(i, slot);
    }
    this.buf.set(h.subarray(0, 32), slot * 32);
  }

  // take removes i's hash and returns a view of it, valid until the next
  // set; undefined if there is none.
  take(i: number): Uint8Array | undefined {
    const slot = this.slots.get(i);
    if (slot === undefined) return undefined;
    this.slots.delete(i);
    const h = this.buf.subarray(slot * 32, slot * 32 + 32);
    if (this.slots.size === 0) {
      // Empty again: start over small, so one burst of scattered chunks
      // does not keep its buffer.
      this.buf = new Uint8Array(32 * 16);
      this.free = [];
      this.used = 0;
    } else {
      this.free.push(slot);
    }
    return h;
  }

  delete(i: number): void {
    this.take(i);
  }
}

// Folder is what a root hash needs: fold(bytes) feeds hashes in chunk
// order, hex() finishes.
export interface Folder {
  fold(hashes: Uint8Array): void;
  hex(): string;
}

const foldBytes = 64 << 10; // fold hashes in batches of 2048

// FileHashes keeps, for one file being received, the hashes its root
// needs (PROTOCOL.md §4.4: the root is BLAKE3 over the chunk hashes in
// order). A hash is recorded when its chunk is verified and counts once
// the chunk is committed (durable), since a sequential sink may drop a
// verified chunk that is then sent again. Committed hashes are folded into
// the root in index order as soon as the chunks before them are committed;
// only those committed after a gap are held. So a file received in order
// costs a few KiB whatever its size, and scattered chunks cost about 60
// bytes each.
export class FileHashes {
  private verified = new HashPool(); // verified, not yet committed
  private held = new HashPool(); // committed, after a gap
  private next = 0; // chunks [0, next) are committed and folded or in run
  private run = new Uint8Array(32 * 4);
  private runLen = 0;

  constructor(
    readonly n: number,
    private folder: Folder,
  ) {}

  verify(index: number, hash: Uint8Array): void {
    this.verified.set(index, hash);
  }

  // drop forgets a verified chunk that was not committed.
  drop(index: number): void {
    this.verified.delete(index);
  }

  commit(index: number): void {
    const h = this.verified.take(index);
    if (!h) throw new Error(`chunk ${index} committed but not verified`);
    if (index !== this.next) {
      if (index < this.next || this.held.has(index)) throw new Error(`chunk ${index} committed twice`);
      this.held.set(index, h);
      return;
    }
    this.append(h);
    for (;;) {
      const g = this.held.take(this.next);
      if (!g) break;
      this.append(g);
    }
  }

  private append(h: Uint8Array): void {
    if (this.runLen + 32 > this.run.length) {
      const b = new Uint8Array(this.run.length * 2);
      b.set(this.run);
      this.run = b;
    }
    this.run.set(h, this.runLen);
    this.runLen += 32;
    this.next++;
    if (this.runLen >= foldBytes) this.flush();
  }

  private flush(): void {
    if (this.runLen === 0) return;
    this.folder.fold(this.run.subarray(0, this.runLen));
    this.runLen = 0;
  }

  get committed(): number {
    return this.next + this.held.size;
  }

  // root returns the root in hex once every chunk is committed, else "".
  root(): string {
    if (this.next !== this.n) return "";
    this.flush();
    return this.folder.hex();
  }

  // pending is how many hashes are held individually (for tests).
  get pending(): number {
    return this.verified.size + this.held.size;
  }
}
