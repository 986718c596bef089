/**
 * @module store/store
 * `openStore`: the one entry point. Embedded → start the PGlite worker and point a `pg.Pool` at
 * it; postgres → a `pg.Pool` on the URL. Either way callers get the same pool and SQL.
 */
import type pg from 'pg';
import { lazyRequire } from '../lazyRequire.js';

const pgModule = lazyRequire<typeof import('pg')>('pg');
import { startEmbeddedServer, type EmbeddedServer } from './embedded.js';
import { runMigrations, MIGRATIONS, type Migration } from './migrations.js';
import type { Store, StoreConfig, StoreEvent } from './types.js';

export const DEFAULT_VECTOR_DIMENSIONS = 384;

export interface OpenStoreOptions {
  /** Store events for the log (crash, restart, pool errors). */
  onEvent?: (e: StoreEvent) => void;
  /** Migrations to run on `migrate()`; default all of `MIGRATIONS`. */
  migrations?: readonly Migration[];
}

/** Opens the store. Does not migrate: call `store.migrate()` before use. */
export async function openStore(config: StoreConfig, options: OpenStoreOptions = {}): Promise<Store> {
  const vectorDimensions = config.vectorDimensions ?? DEFAULT_VECTOR_DIMENSIONS;
  const onEvent = options.onEvent;
  let embedded: EmbeddedServer | undefined;
  let pool: pg.Pool;
  if (config.kind === 'embedded') {
    const poolSize = config.poolSize ?? 8;
    embedded = await startEmbeddedServer({
      dataDir: config.dataDir,
      // One spare, so a pool at its limit never waits on the socket server's queue.
      maxConnections: poolSize + 1,
      restartOnCrash: config.restartOnCrash ?? true,
      ...(onEvent ? { onEvent } : {}),
    });
    pool = new (pgModule().Pool)({
      host: '127.0.0.1',
      port: embedded.port,
      user: 'postgres',
      database: 'postgres',
      max: poolSize,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 5_000,
    });
  } else {
    pool = new (pgModule().Pool)({ connectionString: config.url, max: config.poolSize ?? 10, connectionTimeoutMillis: 5_000 });
  }
  // An idle client whose server went away emits 'error' on the pool; unhandled, it would kill
  // the gateway. The next query simply opens a new connection.
  pool.on('error', (err) => onEvent?.({ event: 'pool-error', message: err.message }));

  let closed: Promise<void> | undefined;
  return {
    kind: config.kind,
    pool,
    vectorDimensions,
    migrate: () => runMigrations(pool, { vectorDimensions }, options.migrations ?? MIGRATIONS),
    status: () => ({
      kind: config.kind,
      up: embedded ? embedded.up : true,
      restarts: embedded?.restarts ?? 0,
      ...(embedded ? { startupMs: embedded.startupMs } : {}),
    }),
    close() {
      closed ??= (async () => {
        await pool.end().catch(() => {});
        await embedded?.stop();
      })();
      return closed;
    },
    ...(embedded ? { _embedded: embedded } : {}),
  } as Store;
}

/** The embedded server behind a store (tests: simulate a crash). */
export function embeddedServerOf(store: Store): EmbeddedServer | undefined {
  return (store as Store & { _embedded?: EmbeddedServer })._embedded;
}
