/**
 * @module store/types
 * What the rest of the gateway sees of the SQL store: a `pg.Pool`, migrations, close. The
 * store is Postgres with pgvector in production and PGlite (embedded, served over the Postgres
 * wire) by default; both are reached through the same `pg` pool, so there is one SQL path.
 */
import type pg from 'pg';

/** Embedded PGlite persisted in `dataDir`, served on 127.0.0.1 by a worker thread. */
export interface EmbeddedStoreConfig {
  kind: 'embedded';
  /** Postgres data directory PGlite persists to; created on first start. One gateway per directory. */
  dataDir: string;
  /** Connections the pool may open. Default 8. PGlite runs one query at a time anyway. */
  poolSize?: number;
  /** Dimensions of the cache's embedding column (fixed when the table is created). Default 384. */
  vectorDimensions?: number;
  /** Restart the worker when it dies unexpectedly. Default true. */
  restartOnCrash?: boolean;
}

/** A Postgres server with the pgvector extension available. */
export interface PostgresStoreConfig {
  kind: 'postgres';
  /** Connection string, e.g. postgres://user:pass@host:5432/db. */
  url: string;
  /** Default 10. */
  poolSize?: number;
  /** Dimensions of the cache's embedding column (fixed when the table is created). Default 384. */
  vectorDimensions?: number;
}

export type StoreConfig = EmbeddedStoreConfig | PostgresStoreConfig;

/** Something the store wants logged (no SQL text, no row data). */
export interface StoreEvent {
  event: 'embedded-started' | 'embedded-crashed' | 'embedded-restarted' | 'embedded-restart-failed' | 'pool-error';
  message?: string;
  startupMs?: number;
  restarts?: number;
}

export interface StoreStatus {
  kind: StoreConfig['kind'];
  /** False while the embedded worker is down (between a crash and its restart). */
  up: boolean;
  /** Embedded only: worker restarts since open. */
  restarts: number;
  /** Embedded only: time the last worker start took, ms. */
  startupMs?: number;
}

export interface Store {
  readonly kind: StoreConfig['kind'];
  /** The one SQL path. Queries fail (reject) while the backend is down; callers fail open. */
  readonly pool: pg.Pool;
  /** Dimensions of `semantic_cache.embedding` this store was opened for. */
  readonly vectorDimensions: number;
  /** Applies pending migrations (idempotent; safe when replicas start together). */
  migrate(): Promise<MigrationReport>;
  status(): StoreStatus;
  /** Ends the pool, then (embedded) stops the worker cleanly and releases the data dir. Idempotent. */
  close(): Promise<void>;
}

export interface MigrationReport {
  /** Versions applied by this call, in order. */
  applied: number[];
  /** Highest version present after the call. */
  current: number;
}

/** Another process (or store in this process) holds the embedded data directory. */
export class StoreLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreLockedError';
  }
}

/** The database's schema does not fit the configuration (e.g. embedding dimensions changed). */
export class StoreSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreSchemaError';
  }
}

/** The embedded worker could not start, or died. */
export class EmbeddedStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EmbeddedStoreError';
  }
}
