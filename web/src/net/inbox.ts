// Inbox is an unbounded async queue: producers push from event handlers, one
// consumer awaits next(). After fail(), queued items are still delivered,
// then next() rejects with the error.
export class Inbox<T> {
  private items: T[] = [];
  private waiter: { resolve: (v: T) => void; reject: (e: Error) => void } | null = null;
  private err: Error | null = null;

  push(v: T): void {
    if (this.err) return;
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w.resolve(v);
    } else {
      this.items.push(v);
    }
  }

  fail(e: Error): void {
    if (this.err) return;
    this.err = e;
    const w = this.waiter;
    if (w && this.items.length === 0) {
      this.waiter = null;
      w.reject(e);
    }
  }

  get failed(): Error | null {
    return this.err;
  }

  get size(): number {
    return this.items.length;
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  next(): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift()!);
    if (this.err) return Promise.reject(this.err);
    if (this.waiter) return Promise.reject(new Error("inbox: concurrent next"));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }
}
