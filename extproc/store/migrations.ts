/**
 * @module store/migrations
 * Versioned schema migrations, shared by every module that keeps state in the store (the
 * semantic cache, the usage ledger). A migration is one entry in `MIGRATIONS`; each runs in its
 * own transaction and is recorded in `schema_migrations`, so running `migrate` again is a no-op.
 * Replicas starting together against one Postgres serialise on an advisory lock, and the
 * second one finds the work done.
 */
import type pg from 'pg';
import { cacheMigration } from './cacheSchema.js';
import { ledgerBatchesMigration, ledgerCallerIndexMigration, ledgerMigration } from '../usage/ledgerSchema.js';
import { StoreSchemaError, type MigrationReport } from './types.js';

/** What a migration's SQL may depend on (settings fixed at table creation). */
export interface MigrationContext {
  /** Dimensions of the cache's embedding column. */
  vectorDimensions: number;
}

export interface Migration {
  /** 1, 2, 3… in order; never reused or renumbered once shipped. */
  version: number;
  name: string;
  /** SQL statements, run in order inside one transaction. */
  up(ctx: MigrationContext): string[];
  /** Optional check after all migrations ran, e.g. that fixed-at-creation settings still fit. */
  verify?(client: pg.ClientBase, ctx: MigrationContext): Promise<void>;
}

/** Every migration, in version order. Adding one (e.g. the usage ledger) is one entry here. */
export const MIGRATIONS: readonly Migration[] = [cacheMigration, ledgerMigration, ledgerCallerIndexMigration, ledgerBatchesMigration];

/** Advisory lock key: the first 8 bytes of sha256("envoy-llm-gateway:migrations"), fixed. */
const LOCK_KEY = '7106812519003459427';

/** Applies the migrations not yet recorded, in order. */
export async function runMigrations(
  pool: pg.Pool,
  ctx: MigrationContext,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationReport> {
  checkOrder(migrations);
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [LOCK_KEY]);
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version integer PRIMARY KEY,
           name text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const done = new Set(
        (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
      );
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await client.query('BEGIN');
        try {
          // Checked again inside the transaction: PGlite multiplexes every connection onto one
          // session, where the advisory lock is re-entrant, but it runs one transaction at a time.
          const again = await client.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
          if (again.rowCount) {
            await client.query('COMMIT');
            continue;
          }
          for (const sql of m.up(ctx)) await client.query(sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw new StoreSchemaError(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
        }
        applied.push(m.version);
      }
      for (const m of migrations) await m.verify?.(client, ctx);
      const top = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
      return { applied, current: top.rows[0]?.v ?? 0 };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [LOCK_KEY]).catch(() => {});
    }
  } finally {
    client.release();
  }
}

function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new StoreSchemaError(`migration list out of order: position ${i + 1} has version ${m.version}`);
  });
}
