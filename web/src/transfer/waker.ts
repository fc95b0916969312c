// Waker lets an async loop sleep until any of several event sources has
// something for it; a notify() before wait() is not lost.
export class Waker {
  private pending = false;
  private resolve: (() => void) | null = null;

  notify = (): void => {
    const r = this.resolve;
    if (r) {
      this.resolve = null;
      r();
    } else {
      this.pending = true;
    }
  };

  wait(): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((r) => (this.resolve = r));
  }
}
