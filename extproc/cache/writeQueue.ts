/**
 * @module cache/writeQueue
 * A bounded queue of pending writes, drained in batches by one worker loop. Callers never wait
 * on it: `push` returns at once, and when the queue is full the item is dropped and counted
 * (a cache that falls behind loses entries, it never grows memory or delays answers).
 */

export interface WriteQueueStats {
  pending: number;
  written: number;
  dropped: number;
  failed: number;
}

export class WriteQueue<T> {
  private items: T[] = [];
  private draining: Promise<void> | undefined;
  private readonly counts = { written: 0, dropped: 0, failed: 0 };

  constructor(
    private readonly write: (batch: T[]) => Promise<void>,
    private readonly opts: { maxPending: number; batchSize: number; onError?: (err: unknown, size: number) => void },
  ) {}

  /** Enqueues, or drops when full. Returns false when dropped. */
  push(item: T): boolean {
    if (this.items.length >= this.opts.maxPending) {
      this.counts.dropped++;
      return false;
    }
    this.items.push(item);
    this.draining ??= Promise.resolve().then(() => this.drain());
    return true;
  }

  /** Resolves once everything queued so far is written (or failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  stats(): WriteQueueStats {
    return { pending: this.items.length, ...this.counts };
  }

  private async drain(): Promise<void> {
    try {
      while (this.items.length > 0) {
        const batch = this.items.splice(0, this.opts.batchSize);
        try {
          await this.write(batch);
          this.counts.written += batch.length;
        } catch (err) {
          this.counts.failed += batch.length;
          this.opts.onError?.(err, batch.length);
        }
      }
    } finally {
      this.draining = undefined;
    }
  }
}
