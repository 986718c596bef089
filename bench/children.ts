// Parent side of the child-process protocol: spawn a server child, ask it for stats, stop it.
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './ext-proc-proto.js';
import type { ChildStats, ChildToParent, ParentToChild } from './child-protocol.js';

export interface ServerChild {
  label: string;
  impl: string;
  port: number;
  pid: number;
  startupMs: number;
  stats(resetPeak: boolean): Promise<ChildStats>;
  stop(): Promise<void>;
  /** Rejects if the child exits before `stop()`; used to abort a run instead of hanging. */
  readonly died: Promise<never>;
}

const STARTUP_TIMEOUT_MS = 60_000;

function prefixLines(label: string, stream: NodeJS.ReadableStream | null): void {
  if (!stream) return;
  let carry = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const text = carry + chunk;
    const lines = text.split('\n');
    carry = lines.pop() ?? '';
    for (const line of lines) process.stderr.write(`[${label}] ${line}\n`);
  });
  stream.on('end', () => {
    if (carry) process.stderr.write(`[${label}] ${carry}\n`);
  });
}

/**
 * Fork `bench/<entry>` and wait for its `ready` message: compiled by tsc into `compiledDir` (what
 * `npm start` runs: plain node, no loader) or, without it, under tsx. Every child of a run uses
 * the same build.
 */
export async function startServerChild(
  label: string,
  entry: string,
  env: Record<string, string> = {},
  opts: { profileDir?: string; cpus?: string; compiledDir?: string } = {},
): Promise<ServerChild> {
  const nodeArgs = opts.compiledDir ? [] : ['--import', 'tsx'];
  if (opts.profileDir) {
    // One directory per server: Node writes one profile per thread (main + tsx's loader worker).
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${path.join(opts.profileDir, label)}`);
  }
  // BENCH_NODE_ARGS: node command-line flags for the server children (e.g. heap sizing flags,
  // which V8 reads only at start-up and NODE_OPTIONS does not allow); BENCH_OURS_NODE_ARGS for
  // the gateway's child only.
  for (const extra of [process.env['BENCH_NODE_ARGS'], label === 'ours' ? process.env['BENCH_OURS_NODE_ARGS'] : undefined]) {
    if (extra) nodeArgs.push(...extra.split(/\s+/).filter(Boolean));
  }
  // With `cpus`, run under `taskset -c <cpus>` (exec keeps the IPC fd).
  const script = opts.compiledDir ? path.join(opts.compiledDir, 'bench', entry.replace(/\.ts$/, '.js')) : path.join(REPO_ROOT, 'bench', entry);
  const child: ChildProcess = fork(script, [], {
    cwd: REPO_ROOT,
    ...(opts.cpus
      ? { execPath: 'taskset', execArgv: ['-c', opts.cpus, process.execPath, ...nodeArgs] }
      : { execArgv: nodeArgs }),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  });
  prefixLines(label, child.stdout);
  prefixLines(label, child.stderr);

  let stopping = false;
  let nextId = 1;
  const waiting = new Map<number, (s: ChildStats) => void>();
  let onDeath: (err: Error) => void = () => {};
  const died = new Promise<never>((_, reject) => {
    onDeath = reject;
  });
  died.catch(() => {}); // observed by whoever races it

  const ready = new Promise<Extract<ChildToParent, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label}: no ready message after ${STARTUP_TIMEOUT_MS} ms`)),
      STARTUP_TIMEOUT_MS,
    );
    child.on('message', (raw: unknown) => {
      const msg = raw as ChildToParent;
      if (msg.type === 'ready') {
        clearTimeout(timer);
        resolve(msg);
      } else if (msg.type === 'fatal') {
        clearTimeout(timer);
        reject(new Error(`${label}: failed to start: ${msg.message}`));
      } else if (msg.type === 'stats') {
        const { type: _t, id, ...stats } = msg;
        waiting.get(id)?.(stats);
        waiting.delete(id);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const err = new Error(`${label}: server child exited (code ${code}, signal ${signal})`);
      reject(err);
      if (!stopping) onDeath(err);
    });
  });
  let info: Awaited<typeof ready>;
  try {
    info = await ready;
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null && child.pid) child.kill('SIGKILL');
    throw err;
  }

  const send = (msg: ParentToChild): void => {
    child.send(msg);
  };

  return {
    label,
    impl: info.impl,
    port: info.port,
    pid: info.pid,
    startupMs: info.startupMs,
    died,
    stats(resetPeak) {
      const id = nextId++;
      return Promise.race([
        new Promise<ChildStats>((resolve) => {
          waiting.set(id, resolve);
          send({ type: 'stats', id, resetPeak });
        }),
        died,
      ]);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopping = true;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      if (child.connected) send({ type: 'stop' });
      const timer = setTimeout(() => {
        process.stderr.write(`[${label}] did not exit within 5 s, killing pid ${child.pid}\n`);
        child.kill('SIGKILL');
      }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Pin every thread of this process to `cpus` (taskset -a -p). Returns false if that failed. */
export function pinSelf(cpus: string): boolean {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
  return r.status === 0;
}

/** True when `taskset` can be used (Linux util-linux) and the machine has at least 2 CPUs. */
export function canPin(): boolean {
  if (availableParallelism() < 2) return false;
  return spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;
}

/**
 * Compiles extproc/ and bench/ with tsc (tsconfig.bench.json) into dist-bench/, as `npm run build`
 * does for `npm start`, and returns that folder. tsx's transpile adds helpers (`__name` on every
 * function created) that production code does not run.
 */
export function compileForBench(): string {
  const outDir = path.join(REPO_ROOT, 'dist-bench');
  const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(REPO_ROOT, 'tsconfig.bench.json')], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('tsc -p tsconfig.bench.json failed');
  return outDir;
}
