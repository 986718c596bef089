/**
 * @module usage/ledgerSchema
 * Migration 2: the usage ledger (one row per request) and its cost views; migrations 3 and 4
 * revise its indexes.
 *
 * A batch retried after a lost acknowledgement never counts a request twice: each batch writes
 * its id to `usage_ledger_batches` in the same statement, and a batch whose id is there already
 * writes nothing (migration 4; before it, `request_id` was unique, which also merged two
 * requests that shared a client-set `x-request-id`). Money is `bigint` micro-dollars, summed
 * exactly. Days are UTC.
 */
import type { Migration } from '../store/migrations.js';

export const LEDGER_TABLE = 'usage_ledger';
/** One row per batch written: what makes a retried batch a no-op (migration 4). */
export const LEDGER_BATCHES_TABLE = 'usage_ledger_batches';

/** Views over the ledger: per caller, per model and in total, per UTC day. */
export const LEDGER_VIEWS = {
  byCallerDay: 'usage_daily_by_caller',
  byModelDay: 'usage_daily_by_model',
  byDay: 'usage_daily',
} as const;

/** The ledger's columns, in insert order, with their SQL types (the writer's unnest casts). */
export const LEDGER_COLUMNS = [
  ['request_id', 'text'],
  ['trace_id', 'text'],
  ['started_at', 'timestamptz'],
  ['caller', 'text'],
  ['route', 'text'],
  ['api', 'text'],
  ['requested_model', 'text'],
  ['served_model', 'text'],
  ['provider', 'text'],
  ['attempts', 'integer'],
  ['fallback_path', 'text'],
  ['stream', 'boolean'],
  ['input_tokens', 'bigint'],
  ['output_tokens', 'bigint'],
  ['cached_input_tokens', 'bigint'],
  ['cache_write_tokens', 'bigint'],
  ['reasoning_tokens', 'bigint'],
  ['estimated', 'boolean'],
  ['latency_ms', 'double precision'],
  ['ttft_ms', 'double precision'],
  ['cost_micros', 'bigint'],
  ['priced', 'boolean'],
  ['cache_status', 'text'],
  ['saved_micros', 'bigint'],
  ['pii', 'jsonb'],
  ['rate_limit', 'text'],
  ['status', 'integer'],
  ['outcome', 'text'],
  ['error_class', 'text'],
] as const;

const aggregates = `count(*)::bigint AS requests,
         sum(input_tokens)::bigint AS input_tokens,
         sum(output_tokens)::bigint AS output_tokens,
         sum(cached_input_tokens)::bigint AS cached_input_tokens,
         sum(reasoning_tokens)::bigint AS reasoning_tokens,
         sum(cost_micros)::bigint AS cost_micros,
         sum(saved_micros)::bigint AS saved_micros,
         count(*) FILTER (WHERE cache_status = 'hit')::bigint AS cache_hits,
         count(*) FILTER (WHERE error_class IS NOT NULL)::bigint AS errors,
         count(*) FILTER (WHERE estimated)::bigint AS estimated`;
const day = `(started_at AT TIME ZONE 'UTC')::date`;

export const ledgerMigration: Migration = {
  version: 2,
  name: 'usage ledger',
  up: () => [
    `CREATE TABLE ${LEDGER_TABLE} (
       id bigserial PRIMARY KEY,
       ${LEDGER_COLUMNS.map(([name, type]) => `${name} ${type}${['request_id', 'started_at', 'attempts', 'stream', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'cache_write_tokens', 'reasoning_tokens', 'estimated', 'latency_ms', 'cost_micros', 'priced', 'saved_micros', 'pii', 'outcome'].includes(name) ? ' NOT NULL' : ''}`).join(',\n       ')},
       recorded_at timestamptz NOT NULL DEFAULT now(),
       CONSTRAINT ${LEDGER_TABLE}_request UNIQUE (request_id)
     )`,
    `CREATE INDEX ${LEDGER_TABLE}_started ON ${LEDGER_TABLE} (started_at)`,
    `CREATE INDEX ${LEDGER_TABLE}_caller_started ON ${LEDGER_TABLE} (caller, started_at)`,
    `CREATE VIEW ${LEDGER_VIEWS.byCallerDay} AS
       SELECT ${day} AS day, coalesce(caller, '(none)') AS caller, ${aggregates}
         FROM ${LEDGER_TABLE} GROUP BY 1, 2`,
    `CREATE VIEW ${LEDGER_VIEWS.byModelDay} AS
       SELECT ${day} AS day, coalesce(served_model, requested_model, '(none)') AS model, coalesce(provider, '(none)') AS provider, ${aggregates}
         FROM ${LEDGER_TABLE} GROUP BY 1, 2, 3`,
    `CREATE VIEW ${LEDGER_VIEWS.byDay} AS
       SELECT ${day} AS day, ${aggregates}
         FROM ${LEDGER_TABLE} GROUP BY 1`,
  ],
};

/**
 * Migration 3: drops the (caller, started_at) index of migration 2. No query of the gateway uses
 * it (the views group whole days; the admin page reads the newest rows by `started_at`), and
 * every ledger insert paid for it: a text b-tree entry per row, ~9 µs of the ~36 µs a row
 * costs on the embedded store (bench: ledger rows in batches of 500). An operator who filters
 * the ledger by caller can add it back; the migration only drops it if present.
 */
export const ledgerCallerIndexMigration: Migration = {
  version: 3,
  name: 'usage ledger without the caller index',
  up: () => [`DROP INDEX IF EXISTS ${LEDGER_TABLE}_caller_started`],
};

/**
 * Migration 4: batches, not request ids, make writes idempotent. `request_id` comes from the
 * client's `x-request-id` when it sets one (Envoy keeps it for internal callers), so a unique
 * `request_id` silently dropped the usage of every later request reusing an id. Now each batch
 * records its id in `usage_ledger_batches` in the statement that inserts its rows; `request_id`
 * keeps a plain index for lookups. The cost per row is unchanged (measured on the embedded
 * store, 80,000 rows in batches of 500: 31–34 µs of CPU before and after): plain inserts skip the
 * speculative insertion `ON CONFLICT` needed per row, the batch marker and plain index take it.
 */
export const ledgerBatchesMigration: Migration = {
  version: 4,
  name: 'usage ledger batches',
  up: () => [
    `CREATE TABLE ${LEDGER_BATCHES_TABLE} (
       batch_id text PRIMARY KEY,
       row_count integer NOT NULL,
       written_at timestamptz NOT NULL DEFAULT now()
     )`,
    `CREATE INDEX ${LEDGER_BATCHES_TABLE}_written ON ${LEDGER_BATCHES_TABLE} (written_at)`,
    `ALTER TABLE ${LEDGER_TABLE} DROP CONSTRAINT IF EXISTS ${LEDGER_TABLE}_request`,
    `CREATE INDEX ${LEDGER_TABLE}_request_id ON ${LEDGER_TABLE} (request_id)`,
  ],
};
