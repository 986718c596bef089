/**
 * @module store/embedded
 * Parent side of the embedded store: locks the data directory, starts the PGlite worker
 * (`pgliteHost`), waits until it serves on 127.0.0.1, restarts it on the same port if it dies,
 * and stops it cleanly. The worker is unref'd and is a thread of this process, so it can never
 * outlive the gateway.
 */
import { Worker } from 'node:worker_threads';
import { lockDataDir, type DataDirLock } from './lock.js';
import type { HostOptions, HostToParent, ParentToHost } from './pgliteHost.js';
import { EmbeddedStoreError, type StoreEvent } from './types.js';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const RESTART_BACKOFF_MS = [250, 1_000, 5_000, 30_000] as const;

export interface EmbeddedServerOptions {
  dataDir: string;
  maxConnections: number;
  restartOnCrash: boolean;
  onEvent?: (e: StoreEvent) => void;
}

export interface EmbeddedServer {
  readonly port: number;
  readonly up: boolean;
  readonly restarts: number;
  readonly startupMs: number;
  /** Test hook and operator tool: kills the worker as a crash would. */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

/** Source of the worker: the compiled `.js` next to this file, or the `.ts` through tsx in dev/tests. */
function createWorker(data: HostOptions): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    // Node 20 cannot load a .ts worker even under tsx; register tsx inside the worker first.
    const tsx = import.meta.resolve('tsx/esm/api');
    const host = new URL('./pgliteHost.ts', here).href;
    const code = `const { register } = await import(${JSON.stringify(tsx)}); register(); await import(${JSON.stringify(host)});`;
    return new Worker(code, { eval: true, workerData: data });
  }
  return new Worker(new URL('./pgliteHost.js', here), { workerData: data });
}

interface Running {
  worker: Worker;
  port: number;
  startupMs: number;
}

function startWorker(data: HostOptions): Promise<Running> {
  const worker = createWorker(data);
  return new Promise<Running>((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new EmbeddedStoreError(`embedded store did not start within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    const done = (): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (msg: HostToParent): void => {
      if (msg.type === 'ready') {
        done();
        resolve({ worker, port: msg.port, startupMs: msg.startupMs });
      } else if (msg.type === 'fatal') {
        done();
        reject(new EmbeddedStoreError(`embedded store failed to start on ${data.dataDir}: ${msg.message}`));
      }
    };
    const onError = (err: Error): void => {
      done();
      reject(new EmbeddedStoreError(`embedded store worker failed: ${err.message}`, { cause: err }));
    };
    const onExit = (code: number): void => {
      done();
      reject(new EmbeddedStoreError(`embedded store worker exited with code ${code} before it was ready`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

/** Locks `dataDir`, starts the worker and resolves once it accepts connections. */
export async function startEmbeddedServer(opts: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const lock: DataDirLock = lockDataDir(opts.dataDir);
  let current: Running;
  try {
    current = await startWorker({ dataDir: opts.dataDir, port: 0, maxConnections: opts.maxConnections });
  } catch (err) {
    lock.release();
    throw err;
  }
  const port = current.port;
  let up = true;
  let stopping = false;
  let restarts = 0;
  let startupMs = current.startupMs;
  let restartTimer: NodeJS.Timeout | undefined;
  opts.onEvent?.({ event: 'embedded-started', startupMs });

  const watch = (r: Running): void => {
    r.worker.unref();
    r.worker.on('error', (err) => opts.onEvent?.({ event: 'embedded-crashed', message: err.message }));
    r.worker.once('exit', (code) => {
      if (stopping || r !== current) return;
      up = false;
      opts.onEvent?.({ event: 'embedded-crashed', message: `worker exited with code ${code}`, restarts });
      if (opts.restartOnCrash) scheduleRestart(0);
    });
  };

  const scheduleRestart = (attempt: number): void => {
    const delay = RESTART_BACKOFF_MS[Math.min(attempt, RESTART_BACKOFF_MS.length - 1)]!;
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      if (stopping) return;
      // Same port, so the pool's connection settings stay valid.
      startWorker({ dataDir: opts.dataDir, port, maxConnections: opts.maxConnections }).then(
        (r) => {
          if (stopping) {
            r.worker.postMessage({ type: 'stop' } satisfies ParentToHost);
            return;
          }
          current = r;
          restarts++;
          startupMs = r.startupMs;
          up = true;
          watch(r);
          opts.onEvent?.({ event: 'embedded-restarted', startupMs, restarts });
        },
        (err: unknown) => {
          opts.onEvent?.({ event: 'embedded-restart-failed', message: (err as Error).message, restarts });
          scheduleRestart(attempt + 1);
        },
      );
    }, delay);
    restartTimer.unref();
  };

  watch(current);

  return {
    port,
    get up() {
      return up;
    },
    get restarts() {
      return restarts;
    },
    get startupMs() {
      return startupMs;
    },
    async crash() {
      const exited = new Promise<void>((r) => current.worker.once('exit', () => r()));
      await current.worker.terminate();
      await exited;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      const w = current.worker;
      if (up) {
        // Unref'd while running; a clean stop must keep the process alive until it is done.
        w.ref();
        const exited = new Promise<void>((r) => w.once('exit', () => r()));
        w.postMessage({ type: 'stop' } satisfies ParentToHost);
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
        if ((await Promise.race([exited, timeout])) === 'timeout') await w.terminate();
      }
      up = false;
      lock.release();
    },
  };
}
