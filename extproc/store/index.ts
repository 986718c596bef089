/**
 * @module store
 * The SQL store shared by the semantic cache and the usage ledger.
 */
export { openStore, embeddedServerOf, DEFAULT_VECTOR_DIMENSIONS, type OpenStoreOptions } from './store.js';
export { MIGRATIONS, runMigrations, type Migration, type MigrationContext } from './migrations.js';
export { CACHE_TABLE } from './cacheSchema.js';
export { toVectorSql, fromVectorSql } from './vector.js';
export {
  StoreLockedError,
  StoreSchemaError,
  EmbeddedStoreError,
  type Store,
  type StoreConfig,
  type StoreEvent,
  type StoreStatus,
  type MigrationReport,
  type EmbeddedStoreConfig,
  type PostgresStoreConfig,
} from './types.js';
