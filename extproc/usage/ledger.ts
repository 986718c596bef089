/**
 * @module usage/ledger
 * Writes usage records to the ledger table off the request path: `add` only queues (bounded),
 * a timer or a full batch flushes, one batch in flight at a time, each batch one INSERT of
 * one JSON array of rows, so thousands of rows cost one round trip. A failing store keeps the
 * queued records and retries with backoff; only a full queue drops (counted and logged).
 * `close` flushes everything admitted, which is how SIGTERM mid-burst loses no record.
 */
import type { Logger } from '../telemetry/logger.js';
import { describeError } from '../telemetry/logger.js';
import { randomUUID } from 'node:crypto';
import { LEDGER_BATCHES_TABLE, LEDGER_COLUMNS, LEDGER_TABLE } from './ledgerSchema.js';
import type { UsageRecord } from './record.js';

/** The part of `pg.Pool` the writer uses. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

export interface LedgerWriterOptions {
  /** Rows per INSERT (and the queue length that triggers a flush before the timer). Default 500. */
  batchSize?: number;
  /** Longest a record waits in the queue, ms. Default 1000. */
  flushMs?: number;
  /** Records held at most (while the store is slow or down); beyond it new records are dropped. Default 100,000. */
  maxQueue?: number;
  /** First retry delay after a failed write, doubled up to 30 s. Default 500. */
  retryMs?: number;
  log?: Logger;
}

/** A column of the row `e` (a JSON array in LEDGER_COLUMNS order), as its SQL type. */
const columnOf = (type: string, i: number): string =>
  type === 'jsonb' ? `e->${i}` : `(e->>${i})::${type === 'double precision' ? 'float8' : type}`;

/**
 * One statement, so one transaction: the batch's id goes into the batches table, and its rows
 * into the ledger only if the id was not there yet (a retry of a batch whose acknowledgement was
 * lost writes nothing). The rows come as one JSON parameter, each row encoded when its record
 * is queued: the queue holds one string per request, not a record's object graph (records wait
 * up to `flushMs` and would otherwise all reach the old generation), and `pg` encodes no array
 * value by value.
 */
const INSERT_SQL = `WITH batch AS (
    INSERT INTO ${LEDGER_BATCHES_TABLE} (batch_id, row_count) VALUES ($2, $3)
    ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id
  )
  INSERT INTO ${LEDGER_TABLE} (${LEDGER_COLUMNS.map(([c]) => c).join(', ')})
  SELECT ${LEDGER_COLUMNS.map(([, type], i) => columnOf(type, i)).join(', ')}
  FROM jsonb_array_elements($1::jsonb) AS e
  WHERE EXISTS (SELECT 1 FROM batch)`;

const BATCH_MARKER_DAYS = 2;
const PRUNE_SQL = `DELETE FROM ${LEDGER_BATCHES_TABLE} WHERE written_at < now() - interval '${BATCH_MARKER_DAYS} days'`;
const PRUNE_EVERY_MS = 3_600_000;

/** One record as the ledger's column values, in `LEDGER_COLUMNS` order. */
export function ledgerRow(r: UsageRecord): unknown[] {
  return [
    r.requestId,
    r.traceId ?? null,
    new Date(r.startedAt).toISOString(),
    r.caller ?? null,
    r.route ?? null,
    r.api,
    r.requestedModel ?? null,
    r.servedModel ?? null,
    r.provider ?? null,
    r.attempts,
    r.fallbackPath.length > 0 ? r.fallbackPath.join('>') : null,
    r.stream,
    r.tokens.input,
    r.tokens.output,
    r.tokens.cachedInput,
    r.tokens.cacheWrite,
    r.tokens.reasoning,
    r.estimated,
    r.latencyMs,
    r.ttftMs ?? null,
    r.costMicros,
    r.priced,
    r.cache ?? null,
    r.savedMicros,
    r.pii,
    r.rateLimit ?? null,
    r.status ?? null,
    r.outcome,
    r.errorClass ?? null,
  ];
}

/** Batched, bounded, flushed-on-close ledger writer. */
export class LedgerWriter {
  /** Rows waiting, each encoded as JSON (`ledgerRow`). */
  private queue: string[] = [];
  /**
   * The batch being written, kept with its id until the store acknowledges it: a retry sends
   * the same id and the same records, so the store can tell a retry from a new batch.
   */
  private pending: { id: string; rows: string[] } | undefined;
  private prunedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private retryDelay: number;
  private retryAt = 0;
  private closing = false;
  private readonly batchSize: number;
  private readonly flushMs: number;
  private readonly maxQueue: number;
  private readonly retryMs: number;
  /** Rows the store accepted (a retried batch counted once). */
  written = 0;
  /** Records refused because the queue was full. */
  dropped = 0;
  /** Writes that failed (each retried). */
  failures = 0;

  constructor(
    private readonly pool: Queryable | Promise<Queryable>,
    private readonly options: LedgerWriterOptions = {},
  ) {
    this.batchSize = Math.max(1, options.batchSize ?? 500);
    this.flushMs = Math.max(1, options.flushMs ?? 1000);
    this.maxQueue = Math.max(this.batchSize, options.maxQueue ?? 100_000);
    this.retryMs = this.retryDelay = Math.max(1, options.retryMs ?? 500);
    // Never an unhandled rejection when the store fails to open: writes report it.
    if (pool instanceof Promise) pool.catch(() => undefined);
  }

  /** Records waiting to be written. */
  get queued(): number {
    return this.queue.length;
  }

  /** Queues a record; false when the queue is full (the record is dropped and counted). */
  add(record: UsageRecord): boolean {
    if (this.queue.length >= this.maxQueue) {
      if (this.dropped++ % 1000 === 0) this.options.log?.error('usage ledger queue full; dropping records', { dropped: this.dropped, max_queue: this.maxQueue });
      return false;
    }
    this.queue.push(JSON.stringify(ledgerRow(record)));
    if (this.queue.length >= this.batchSize) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.flushMs).unref();
    return true;
  }

  /** Writes everything queued now; resolves when the queue is empty or a write failed. */
  async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const before = this.failures;
      await this.drain();
      if (this.failures !== before) return;
    }
    await this.running;
  }

  /**
   * Stops the timer and writes every admitted record; a store that keeps failing is retried
   * `attempts` times, then what is left is logged as lost.
   */
  async close(attempts = 5): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    let delay = this.retryMs;
    for (let i = 0; i < attempts && this.queue.length > 0; i++) {
      await this.flush();
      if (this.queue.length === 0) break;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
    await this.running;
    if (this.queue.length > 0) this.options.log?.error('usage ledger closed with unwritten records', { lost: this.queue.length });
  }

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running || this.queue.length === 0) return;
    const wait = this.retryAt - Date.now();
    if (wait > 0 && !this.closing) {
      this.timer = setTimeout(() => this.kick(), wait).unref();
      return;
    }
    void this.drain().then(() => {
      if (this.queue.length > 0 && !this.closing) this.kick();
    });
  }

  /** One batch (waits for the batch already in flight). */
  private drain(): Promise<void> {
    if (this.running) return this.running.then(() => this.drain());
    if (this.queue.length === 0) return Promise.resolve();
    const batch = (this.pending ??= { id: randomUUID(), rows: this.queue.slice(0, this.batchSize) });
    this.running = this.write(batch.id, batch.rows)
      .then(() => {
        // Only now leave the queue: a record is never out of both the queue and the table.
        this.queue.splice(0, batch.rows.length);
        this.pending = undefined;
        this.written += batch.rows.length;
        this.retryDelay = this.retryMs;
        this.retryAt = 0;
      })
      .catch((err: unknown) => {
        this.failures++;
        this.retryAt = Date.now() + this.retryDelay;
        this.options.log?.warn('usage ledger write failed; will retry', { queued: this.queue.length, retry_ms: this.retryDelay, error: describeError(err) });
        this.retryDelay = Math.min(this.retryDelay * 2, 30_000);
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async write(batchId: string, rows: string[]): Promise<void> {
    const pool = await this.pool;
    await pool.query(INSERT_SQL, [`[${rows.join(',')}]`, batchId, rows.length]);
    if (Date.now() - this.prunedAt > PRUNE_EVERY_MS) {
      this.prunedAt = Date.now();
      await pool.query(PRUNE_SQL).catch((err: unknown) => this.options.log?.warn('usage ledger: pruning batch markers failed', { error: describeError(err) }));
    }
  }
}
