/**
 * The ledger on the embedded store (real PGlite over the Postgres wire): migrations 2 and 3, batched
 * inserts, a batch retried after a lost acknowledgement written once, two requests sharing an
 * x-request-id both kept, the cost views, a failing store keeps records until it recovers,
 * close flushes everything admitted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../extproc/store/index.js';
import { LedgerWriter, type Queryable } from '../../extproc/usage/ledger.js';
import { LEDGER_BATCHES_TABLE, LEDGER_TABLE, LEDGER_VIEWS } from '../../extproc/usage/ledgerSchema.js';
import { sampleRecord } from './fixtures.js';

let store: Store;
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-'));
  store = await openStore({ kind: 'embedded', dataDir: dir });
  const report = await store.migrate();
  expect(report.current).toBeGreaterThanOrEqual(2);
}, 60_000);
afterAll(async () => {
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await store.pool.query(`DELETE FROM ${LEDGER_TABLE}`);
  await store.pool.query(`DELETE FROM ${LEDGER_BATCHES_TABLE}`);
});

async function count(): Promise<number> {
  const r = await store.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${LEDGER_TABLE}`);
  return Number(r.rows[0]!.n);
}

describe('usage ledger', () => {
  it('keeps the indexes its queries use and, after migrations 3 and 4, no caller index and no unique request id', async () => {
    const idx = await store.pool.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE tablename = '${LEDGER_TABLE}' ORDER BY indexname`);
    const defs = idx.rows.map((r) => r.indexdef);
    expect(defs.some((d) => /INDEX .*\(request_id\)/.test(d))).toBe(true);
    expect(defs.some((d) => /UNIQUE INDEX .*\(request_id\)/.test(d))).toBe(false);
    expect(defs.some((d) => /\(started_at\)/.test(d))).toBe(true);
    expect(defs.some((d) => /\(caller, started_at\)/.test(d))).toBe(false);
  });

  it('writes a burst in batches and close() flushes the rest', async () => {
    const w = new LedgerWriter(store.pool, { batchSize: 100, flushMs: 60_000 });
    for (let i = 0; i < 1234; i++) expect(w.add(sampleRecord())).toBe(true);
    await w.close();
    expect(w.queued).toBe(0);
    expect(await count()).toBe(1234);
  });

  it('stores every field, null where absent, and keeps two requests that share a request id', async () => {
    const r = sampleRecord({ fallbackPath: ['claude-opus-4', 'gpt-4o'], attempts: 2, ttftMs: undefined, caller: undefined, pii: { EMAIL: 2, PHONE: 1 }, errorClass: 'truncated' });
    const w = new LedgerWriter(store.pool, { batchSize: 10, flushMs: 5 });
    w.add(r);
    w.add({ ...r, costMicros: 999_999 });
    await w.close();
    const rows = (await store.pool.query(`SELECT * FROM ${LEDGER_TABLE} WHERE request_id = $1 ORDER BY id`, [r.requestId])).rows;
    // A client may set the same x-request-id on two requests: both cost, both are recorded.
    expect(rows.map((x) => Number(x.cost_micros))).toEqual([725, 999_999]);
    const row = rows[0]!;
    expect(row.fallback_path).toBe('claude-opus-4>gpt-4o');
    expect(row.attempts).toBe(2);
    expect(row.ttft_ms).toBeNull();
    expect(row.caller).toBeNull();
    expect(row.pii).toEqual({ EMAIL: 2, PHONE: 1 });
    expect(Number(row.cost_micros)).toBe(725);
    expect(Number(row.input_tokens)).toBe(100);
    expect(row.error_class).toBe('truncated');
    expect(new Date(row.started_at).getTime()).toBe(r.startedAt);
  });

  it('the views sum cost and tokens per caller, per model and per day exactly', async () => {
    const w = new LedgerWriter(store.pool, { batchSize: 50 });
    const day1 = Date.UTC(2026, 10, 1, 23, 59, 0);
    const day2 = Date.UTC(2026, 10, 2, 0, 1, 0);
    w.add(sampleRecord({ caller: 'a', startedAt: day1, costMicros: 1, servedModel: 'gpt-4o' }));
    w.add(sampleRecord({ caller: 'a', startedAt: day1, costMicros: 2, servedModel: 'claude-opus-4', provider: 'anthropic' }));
    w.add(sampleRecord({ caller: 'b', startedAt: day2, costMicros: 4_000_000_000_000, servedModel: 'gpt-4o', cache: 'hit', savedMicros: 10 }));
    await w.close();
    const byCaller = (await store.pool.query(`SELECT day::text, caller, requests, cost_micros, input_tokens FROM ${LEDGER_VIEWS.byCallerDay} ORDER BY day, caller`)).rows;
    expect(byCaller).toEqual([
      { day: '2026-11-01', caller: 'a', requests: '2', cost_micros: '3', input_tokens: '200' },
      { day: '2026-11-02', caller: 'b', requests: '1', cost_micros: '4000000000000', input_tokens: '100' },
    ]);
    const byModel = (await store.pool.query(`SELECT model, provider, sum(cost_micros)::text AS c FROM ${LEDGER_VIEWS.byModelDay} GROUP BY 1, 2 ORDER BY 1`)).rows;
    expect(byModel).toEqual([
      { model: 'claude-opus-4', provider: 'anthropic', c: '2' },
      { model: 'gpt-4o', provider: 'openai', c: '4000000000001' },
    ]);
    const byDay = (await store.pool.query(`SELECT day::text, requests, cache_hits, saved_micros FROM ${LEDGER_VIEWS.byDay} ORDER BY day`)).rows;
    expect(byDay).toEqual([
      { day: '2026-11-01', requests: '2', cache_hits: '0', saved_micros: '0' },
      { day: '2026-11-02', requests: '1', cache_hits: '1', saved_micros: '10' },
    ]);
  });

  it('keeps records while the store fails and writes them once it recovers', async () => {
    let down = true;
    const flaky: Queryable = {
      query: (text, values) => (down ? Promise.reject(new Error('connection refused')) : store.pool.query(text, values)),
    };
    const w = new LedgerWriter(flaky, { batchSize: 10, flushMs: 1, retryMs: 1 });
    for (let i = 0; i < 25; i++) w.add(sampleRecord());
    await w.flush();
    expect(w.failures).toBeGreaterThan(0);
    expect(w.queued).toBe(25);
    down = false;
    await w.close();
    expect(w.queued).toBe(0);
    expect(await count()).toBe(25);
  });

  it('a batch whose acknowledgement was lost is retried with the same id and written once', async () => {
    let lose = 2;
    const lossy: Queryable = {
      // The store commits, then the answer never arrives (twice).
      query: async (text, values) => {
        const result = await store.pool.query(text, values);
        if (lose-- > 0) throw new Error('connection reset after commit');
        return result;
      },
    };
    const w = new LedgerWriter(lossy, { batchSize: 10, flushMs: 1, retryMs: 1 });
    for (let i = 0; i < 25; i++) w.add(sampleRecord());
    await w.close();
    expect(w.failures).toBe(2);
    expect(w.queued).toBe(0);
    expect(await count()).toBe(25);
    const batches = await store.pool.query<{ n: string; rows: string }>(`SELECT count(*) AS n, sum(row_count) AS rows FROM ${LEDGER_BATCHES_TABLE}`);
    expect(Number(batches.rows[0]!.rows)).toBeGreaterThanOrEqual(25);
  });

  it('a full queue drops new records and counts them', async () => {
    const never: Queryable = { query: () => new Promise(() => undefined) };
    const w = new LedgerWriter(never, { batchSize: 2, maxQueue: 3, flushMs: 60_000 });
    const admitted = [1, 2, 3, 4, 5].map(() => w.add(sampleRecord()));
    expect(admitted).toEqual([true, true, true, false, false]);
    expect(w.dropped).toBe(2);
  });
});
