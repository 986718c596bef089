import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { setFlagsFromString } from 'node:v8';

// IPC protocol between the bench parent and a server child process, and the child-side runtime.
//
// A child is started with `child_process.fork` (so it has an IPC channel). It starts its server,
// then sends `ready` with the bound port. The parent asks for `stats` before and after each
// measured run; the child answers with its own `process.cpuUsage()` and RSS figures, so the
// parent can compute CPU time per request from the delta. `stop` closes the server and exits.

export interface ServerHandle {
  port: number;
  close(): Promise<void>;
}

export type ParentToChild =
  | { type: 'stats'; id: number; resetPeak: boolean }
  | { type: 'stop' };

export interface ChildStats {
  /** `process.cpuUsage()` (µs, cumulative, all threads of the process). */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** `process.memoryUsage().rss` now (bytes). */
  rss: number;
  /** Highest sampled RSS since the last `resetPeak` (bytes; sampled every RSS_SAMPLE_MS + at each stats call). */
  peakRss: number;
  /** `process.resourceUsage().maxRSS` converted to bytes: lifetime peak, exact. */
  maxRss: number;
  heapUsed: number;
}

export type ChildToParent =
  | { type: 'ready'; port: number; impl: string; pid: number; node: string; startupMs: number }
  | { type: 'fatal'; message: string }
  | ({ type: 'stats'; id: number } & ChildStats);

export const RSS_SAMPLE_MS = 100;

// tsx turns on source-map support, which makes every `error.stack` (grpc-js builds one per
// cancelled call) several times dearer than under `node dist/...` in production. Server entries
// import this module first; the bench parent imports it too (cheaper driver). Stack traces then
// point into transpiled code; BENCH_SOURCE_MAPS=1 keeps source maps on.
if (process.env.BENCH_SOURCE_MAPS !== '1') process.setSourceMapsEnabled(false);
// BENCH_NODE_FLAGS: V8 flags for the server children (e.g. --trace-gc, not allowed in NODE_OPTIONS).
if (process.env.BENCH_NODE_FLAGS) setFlagsFromString(process.env.BENCH_NODE_FLAGS);

function send(msg: ChildToParent): void {
  process.send?.(msg);
}

/**
 * Child-side main: start the server produced by `start`, report `ready`, then serve IPC requests.
 * Exits when told to stop or when the parent goes away.
 */
export function runChild(impl: string, start: () => Promise<ServerHandle>): void {
  if (!process.send) {
    console.error(`${impl}: must be started by the bench (needs an IPC channel)`);
    process.exit(2);
  }
  const t0 = performance.now();
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss > peakRss) peakRss = rss;
  }, RSS_SAMPLE_MS);
  sampler.unref();

  let handle: ServerHandle | undefined;
  let allocations: AllocationProfile | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(sampler);
    await allocations?.stop();
    try {
      await handle?.close();
    } catch (err) {
      console.error(`${impl}: close failed:`, err);
      code = code || 1;
    }
    process.disconnect?.();
    process.exit(code);
  };

  process.on('message', (raw: unknown) => {
    const msg = raw as ParentToChild;
    if (msg.type === 'stats') {
      const rss = process.memoryUsage.rss();
      if (rss > peakRss) peakRss = rss;
      const cpu = process.cpuUsage();
      send({
        type: 'stats',
        id: msg.id,
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        rss,
        peakRss,
        maxRss: process.resourceUsage().maxRSS * 1024,
        heapUsed: process.memoryUsage().heapUsed,
      });
      if (msg.resetPeak) peakRss = rss;
    } else if (msg.type === 'stop') {
      void stop(0);
    }
  });
  // Parent died or closed the channel: don't linger.
  process.on('disconnect', () => void stop(0));

  start().then(
    async (h) => {
      handle = h;
      allocations = await AllocationProfile.start(impl);
      send({
        type: 'ready',
        port: h.port,
        impl,
        pid: process.pid,
        node: process.version,
        startupMs: Math.round(performance.now() - t0),
      });
    },
    (err: unknown) => {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      send({ type: 'fatal', message });
      console.error(`${impl}: failed to start:`, message);
      setTimeout(() => process.exit(1), 50);
    },
  );
}

/**
 * BENCH_ALLOC_PROFILE=<file prefix>: samples every allocation from `ready` to `stop`, including
 * objects the GC has since collected (Node's --heap-prof keeps only live ones), and writes
 * `<prefix>.<impl>.heapprofile` (open in Chrome DevTools, or sum by stack). Shows what a request
 * allocates, which is what drives the scavenger's cost. BENCH_ALLOC_PROMOTED=1 keeps only objects
 * that outlived the young generation (promoted, then collected by a full GC, or still live): what
 * a stream keeps too long.
 */
export class AllocationProfile {
  private constructor(
    private readonly session: Session,
    private readonly file: string,
  ) {}

  static async start(impl: string): Promise<AllocationProfile | undefined> {
    const prefix = process.env['BENCH_ALLOC_PROFILE'];
    if (!prefix) return undefined;
    const session = new Session();
    session.connect();
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 16384,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: process.env['BENCH_ALLOC_PROMOTED'] !== '1',
    });
    return new AllocationProfile(session, `${prefix}.${impl}.heapprofile`);
  }

  async stop(): Promise<void> {
    const { profile } = await this.session.post('HeapProfiler.stopSampling');
    writeFileSync(this.file, JSON.stringify(profile));
    this.session.disconnect();
  }
}
