/**
 * @module tokens/counter
 * Exact token counts that never stall the event loop for long.
 *
 * BPE is CPU-bound (a 2 MB prompt is ~100 ms even with the fast encoder), so `TokenCounter`
 * counts on worker threads. By default every text goes there, even a short one whose count
 * would be cheaper inline than the round trip (~0.1 ms: structured clone + message + wake-up):
 * an encoder's tables are tens of MB of heap, and on the serving thread every full GC would
 * walk them for the life of the process (measured: the full pipeline at c=1 went from 2.04x to
 * 1.73x the floor's CPU when the serving thread stopped loading o200k). Counts happen when a
 * request is settled, off its path, so the round trip costs no latency anyone waits on.
 * `inlineMaxChars` brings inline counting back for callers that want it. Workers load each
 * encoder once and live until `close()`; a worker that dies is replaced on the next call and
 * its pending counts reject.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Services } from '../pipeline/services.js';
import { countBpe } from './bpe.js';
import type { EncodingName } from './encodings.js';

/** Options of a `TokenCounter`. */
export interface TokenCounterOptions {
  /** Worker threads (default 1: one core counts while the other serves streams). */
  readonly workers?: number;
  /**
   * Texts up to this many UTF-16 code units are counted inline on the caller's thread, which
   * then holds the encoder's tables (default 0: everything on workers, see the module doc).
   */
  readonly inlineMaxChars?: number;
}

const require = createRequire(import.meta.url);

// The worker is plain JavaScript passed as source (`eval: true`), so the same code runs from
// `tsx`, vitest and the compiled `dist/` build without a loader for a `.ts` worker file.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const PLAIN = { disallowedSpecial: new Set() };
const fns = new Map();
function fn(encoding) {
  let f = fns.get(encoding);
  if (!f) {
    const path = workerData.paths[encoding];
    if (!path) throw new Error('unknown encoding ' + encoding);
    f = require(path).countTokens;
    fns.set(encoding, f);
  }
  return f;
}
parentPort.on('message', (m) => {
  try {
    parentPort.postMessage({ id: m.id, n: m.text.length === 0 ? 0 : fn(m.encoding)(m.text, PLAIN) });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.message || e) });
  }
});
`;

const ENCODER_PATHS: Record<EncodingName, string> = {
  o200k_base: require.resolve('gpt-tokenizer/cjs/encoding/o200k_base'),
  cl100k_base: require.resolve('gpt-tokenizer/cjs/encoding/cl100k_base'),
};

interface Pending {
  resolve(n: number): void;
  reject(err: Error): void;
}

class CountWorker {
  readonly pending = new Map<number, Pending>();
  readonly worker: Worker;
  dead = false;

  constructor(onExit: (w: CountWorker) => void) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { paths: ENCODER_PATHS } });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; n?: number; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.error !== undefined) p.reject(new Error(`token count failed: ${m.error}`));
      else p.resolve(m.n ?? 0);
    });
    const fail = (why: string): void => {
      if (this.dead) return;
      this.dead = true;
      for (const p of this.pending.values()) p.reject(new Error(`token count worker ${why}`));
      this.pending.clear();
      onExit(this);
    };
    this.worker.on('error', (err) => fail(`failed: ${err.message}`));
    this.worker.on('exit', (code) => fail(`exited (${code})`));
  }

  count(id: number, text: string, encoding: EncodingName): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Keep the process alive only while a count is outstanding.
      this.worker.ref();
      this.worker.postMessage({ id, text, encoding });
    });
  }
}

/** Exact BPE token counts, inline for small texts and on worker threads for the rest. */
export class TokenCounter {
  private readonly size: number;
  private readonly inlineMax: number;
  private readonly workers: (CountWorker | undefined)[];
  private nextId = 1;
  private closed = false;

  constructor(options: TokenCounterOptions = {}) {
    this.size = Math.max(1, options.workers ?? 1);
    this.inlineMax = options.inlineMaxChars ?? 0;
    this.workers = new Array<CountWorker | undefined>(this.size).fill(undefined);
  }

  /** Exact token count of `text` in `encoding`. */
  count(text: string, encoding: EncodingName): Promise<number> {
    if (this.closed) return Promise.reject(new Error('TokenCounter is closed'));
    if (text.length <= this.inlineMax) {
      try {
        return Promise.resolve(countBpe(text, encoding));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return this.pick().count(this.nextId++, text, encoding);
  }

  /** Stops the workers; pending counts reject. */
  async close(): Promise<void> {
    this.closed = true;
    const running = this.workers.filter((w): w is CountWorker => w !== undefined);
    this.workers.fill(undefined);
    await Promise.all(running.map((w) => w.worker.terminate()));
  }

  /** The worker with the fewest counts outstanding (spawned on first use). */
  private pick(): CountWorker {
    let best: CountWorker | undefined;
    for (let i = 0; i < this.size; i++) {
      let w = this.workers[i];
      if (!w || w.dead) {
        w = new CountWorker((gone) => {
          const at = this.workers.indexOf(gone);
          if (at >= 0) this.workers[at] = undefined;
        });
        this.workers[i] = w;
      }
      if (!best || w.pending.size < best.pending.size) best = w;
    }
    return best!;
  }
}

/**
 * The config generation's one counter, shared by every stage that counts tokens (rate-limit,
 * usage): one worker, one copy of each encoder; closed when the generation's services are.
 */
export function sharedTokenCounter(services: Services): TokenCounter {
  return services.shared('token-counter', null, () => new TokenCounter(), (c) => c.close());
}

let shared: TokenCounter | undefined;

/** Exact count on the process-wide counter (one worker, created on first use). */
export function countTokens(text: string, encoding: EncodingName): Promise<number> {
  shared ??= new TokenCounter();
  return shared.count(text, encoding);
}

/** Closes the process-wide counter (gateway shutdown). */
export async function closeSharedCounter(): Promise<void> {
  const c = shared;
  shared = undefined;
  await c?.close();
}
