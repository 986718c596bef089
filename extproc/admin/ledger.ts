/**
 * @module admin/ledger
 * What the admin page reads from the usage ledger: the gateway's own ledger service (matched by
 * the usage stage's options, as the services registry shares it), the cost tables of the
 * `report` command, and the last requests' records — ids, names, counts and money only; the
 * ledger holds no prompt text.
 */
import type { GatewayConfig } from '../config/schema.js';
import type { Store } from '../store/index.js';
import { LEDGER_TABLE } from '../usage/ledgerSchema.js';
import { usageOptionsSchema } from '../usage/options.js';
import { reportTable } from '../usage/report.js';
import { openLedgers, type LedgerService } from '../usage/sinks.js';

/** The usage stage's ledger options in `config`, or undefined (no usage stage, or `ledger: false`). */
export function ledgerOptionsOf(config: GatewayConfig): unknown {
  const entry = config.pipeline.stages.find((s) => (typeof s === 'string' ? s : s.name) === 'usage');
  if (entry === undefined) return undefined;
  const raw: Record<string, unknown> = typeof entry === 'string' ? {} : { ...(entry as Record<string, unknown>) };
  for (const k of ['name', 'failure', 'timeoutMs']) delete raw[k];
  const parsed = usageOptionsSchema.safeParse(raw);
  return parsed.success && parsed.data.ledger !== false ? parsed.data.ledger : undefined;
}

/** The open ledger service of the config in force (same options, compared as JSON like the services registry). */
export function ledgerServiceOf(config: GatewayConfig): LedgerService | undefined {
  const options = ledgerOptionsOf(config);
  if (options === undefined) return undefined;
  const json = JSON.stringify(options);
  return openLedgers().find((l) => JSON.stringify(l.options) === json);
}

export interface CostTable {
  readonly columns: string[];
  readonly rows: (string | number)[][];
  readonly money: ReadonlySet<string>;
}

/** Cost per caller, per model and per day for [from, to] (UTC days). */
export async function costTables(store: Store, from: string, to: string): Promise<Record<'caller' | 'model' | 'day', CostTable>> {
  return {
    caller: await reportTable(store, 'caller', from, to),
    model: await reportTable(store, 'model', from, to),
    day: await reportTable(store, 'day', from, to),
  };
}

/** One request as the page lists it. */
export interface RecentRecord {
  readonly startedAt: string;
  readonly requestId: string;
  readonly caller: string | null;
  readonly route: string | null;
  readonly servedModel: string | null;
  readonly provider: string | null;
  readonly attempts: number;
  readonly fallbackPath: string | null;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costMicros: number;
  readonly cache: string | null;
  readonly piiEntities: number;
  readonly rateLimit: string | null;
  readonly status: number | null;
  readonly latencyMs: number;
  readonly errorClass: string | null;
}

/** The last `limit` records, newest first. */
export async function recentRecords(store: Store, limit: number): Promise<RecentRecord[]> {
  const r = await store.pool.query<Record<string, unknown>>(
    `SELECT started_at, request_id, caller, route, served_model, provider, attempts, fallback_path, input_tokens, output_tokens,
            cost_micros, cache_status, pii, rate_limit, status, latency_ms, error_class
       FROM ${LEDGER_TABLE} ORDER BY started_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
  return r.rows.map((x) => {
    const pii = (typeof x['pii'] === 'string' ? JSON.parse(x['pii']) : x['pii'] ?? {}) as Record<string, number>;
    const started = x['started_at'];
    return {
      startedAt: started instanceof Date ? started.toISOString() : String(started),
      requestId: String(x['request_id']),
      caller: str(x['caller']),
      route: str(x['route']),
      servedModel: str(x['served_model']),
      provider: str(x['provider']),
      attempts: Number(x['attempts']),
      fallbackPath: str(x['fallback_path']),
      inputTokens: Number(x['input_tokens']),
      outputTokens: Number(x['output_tokens']),
      costMicros: Number(x['cost_micros']),
      cache: str(x['cache_status']),
      piiEntities: Object.values(pii).reduce((a, b) => a + Number(b), 0),
      rateLimit: str(x['rate_limit']),
      status: x['status'] === null ? null : Number(x['status']),
      latencyMs: Number(x['latency_ms']),
      errorClass: str(x['error_class']),
    };
  });
}
