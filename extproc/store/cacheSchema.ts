/**
 * @module store/cacheSchema
 * Migration 1: the semantic cache table.
 *
 * The embedding column's dimensions are fixed when the table is created (pgvector indexes need
 * a fixed size). Changing the embedder's dimensions later is refused with a clear error rather
 * than mixing vectors of two sizes; `embedder` records which embedder made each vector, so the
 * cache never compares vectors from two different models of the same size.
 */
import type pg from 'pg';
import type { Migration, MigrationContext } from './migrations.js';
import { StoreSchemaError } from './types.js';

export const CACHE_TABLE = 'semantic_cache';

export const cacheMigration: Migration = {
  version: 1,
  name: 'semantic cache',
  up: ({ vectorDimensions: n }: MigrationContext) => {
    if (!Number.isInteger(n) || n < 1 || n > 2000) {
      // HNSW in pgvector indexes at most 2,000 dimensions of type vector.
      throw new StoreSchemaError(`vector dimensions must be an integer in 1..2000, got ${n}`);
    }
    return [
      'CREATE EXTENSION IF NOT EXISTS vector',
      `CREATE TABLE ${CACHE_TABLE} (
         id bigserial PRIMARY KEY,
         scope_key text NOT NULL,
         exact_hash text NOT NULL,
         embedder text NOT NULL,
         embedding vector(${n}),
         prompt text NOT NULL,
         answer jsonb NOT NULL,
         model text NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now(),
         expires_at timestamptz NOT NULL,
         last_hit_at timestamptz NOT NULL DEFAULT now(),
         hit_count integer NOT NULL DEFAULT 0,
         CONSTRAINT ${CACHE_TABLE}_scope_exact UNIQUE (scope_key, exact_hash)
       )`,
      // (scope_key, last_hit_at): the scope lookup, per-scope count and least-recently-hit eviction.
      `CREATE INDEX ${CACHE_TABLE}_scope ON ${CACHE_TABLE} (scope_key, last_hit_at)`,
      `CREATE INDEX ${CACHE_TABLE}_expires ON ${CACHE_TABLE} (expires_at)`,
      `CREATE INDEX ${CACHE_TABLE}_embedding ON ${CACHE_TABLE} USING hnsw (embedding vector_cosine_ops)`,
    ];
  },
  verify: async (client: pg.ClientBase, { vectorDimensions }: MigrationContext) => {
    const r = await client.query<{ t: string }>(
      `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute
        WHERE attrelid = '${CACHE_TABLE}'::regclass AND attname = 'embedding'`,
    );
    const type = r.rows[0]?.t;
    if (type !== `vector(${vectorDimensions})`) {
      throw new StoreSchemaError(
        `${CACHE_TABLE}.embedding is ${type ?? 'missing'} (fixed when the table was created) but the embedder ` +
          `gives ${vectorDimensions} dimensions: use the embedder's original dimensions, a new data directory ` +
          `or database, or drop the cache (DROP TABLE ${CACHE_TABLE}; DELETE FROM schema_migrations WHERE version = 1)`,
      );
    }
  },
};
