/**
 * Test backends for the store: 'embedded' (openStore starts its own PGlite worker in a temp
 * data dir) and 'postgres' (`pg` over the real wire protocol to a PGlite socket server this
 * helper starts in memory; there is no Postgres server on the build machines).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { openStore, type Store, type StoreConfig } from '../../extproc/store/index.js';

export interface WireServer {
  url: string;
  stop(): Promise<void>;
}

/** An in-memory PGlite with pgvector behind a Postgres-wire socket on 127.0.0.1. */
export async function startWireServer(): Promise<WireServer> {
  const db = await PGlite.create({ extensions: { vector } });
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 32 });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

export function tempDir(prefix = 'gw-store-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export type BackendKind = 'embedded' | 'postgres';
export const BACKENDS: readonly BackendKind[] = ['embedded', 'postgres'];

export interface Backend {
  kind: BackendKind;
  config(overrides?: { vectorDimensions?: number }): StoreConfig;
  open(overrides?: { vectorDimensions?: number }): Promise<Store>;
  dispose(): Promise<void>;
}

/** Starts what a backend needs (a temp dir or a wire server). */
export async function startBackend(kind: BackendKind): Promise<Backend> {
  if (kind === 'embedded') {
    const tmp = tempDir();
    const dataDir = path.join(tmp.dir, 'pgdata');
    const config = (o: { vectorDimensions?: number } = {}): StoreConfig => ({ kind: 'embedded', dataDir, ...o });
    return { kind, config, open: (o) => openStore(config(o)), dispose: async () => tmp.remove() };
  }
  const wire = await startWireServer();
  const config = (o: { vectorDimensions?: number } = {}): StoreConfig => ({ kind: 'postgres', url: wire.url, ...o });
  return { kind, config, open: (o) => openStore(config(o)), dispose: () => wire.stop() };
}
