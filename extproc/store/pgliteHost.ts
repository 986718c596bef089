/**
 * @module store/pgliteHost
 * Runs inside the embedded store's worker thread: opens PGlite (with pgvector) on the data
 * directory and serves it on 127.0.0.1 over the Postgres wire protocol. PGlite is WebAssembly
 * on one thread and blocks it for up to hundreds of milliseconds per write; here that thread is
 * not the gateway's gRPC event loop. A worker rather than a child process: it starts ~100 ms
 * sooner (measured: ~370 ms vs ~470 ms with an existing data dir) and cannot outlive the gateway.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface HostOptions {
  dataDir: string;
  /** 0 for any free port; the previous port when restarting after a crash. */
  port: number;
  maxConnections: number;
}

export type HostToParent =
  | { type: 'ready'; port: number; startupMs: number }
  | { type: 'fatal'; message: string }
  | { type: 'stopped' };

export type ParentToHost = { type: 'stop' };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('pgliteHost must run in a worker thread');
  const opts = workerData as HostOptions;
  const t0 = performance.now();
  const send = (msg: HostToParent): void => port.postMessage(msg);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    db = await PGlite.create({ dataDir: opts.dataDir, extensions: { vector } });
    await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: opts.port, maxConnections: opts.maxConnections });
    await server.start();
    const conn = server.getServerConn();
    const bound = Number(conn.slice(conn.lastIndexOf(':') + 1));
    send({ type: 'ready', port: bound, startupMs: performance.now() - t0 });
  } catch (err) {
    send({ type: 'fatal', message: err instanceof Error ? err.message : String(err) });
    await db?.close().catch(() => {});
    process.exit(1); // ends this worker thread only
  }
  port.on('message', (msg: ParentToHost) => {
    if (msg.type !== 'stop') return;
    void (async () => {
      await server?.stop().catch(() => {});
      // close() flushes PGlite's state to the data directory.
      await db?.close().catch(() => {});
      send({ type: 'stopped' });
      port.close();
    })();
  });
}

await main();
