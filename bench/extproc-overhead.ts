// ext_proc overhead bench: our gateway's pass-through pipeline vs a minimal no-op ext_proc server
// (the floor), both in child processes, driven by an Envoy-like gRPC client in this process.
//
//   npm run bench                     full run (2000 req at c=1, 10000 at c=32, 50 SSE chunks)
//   npm run bench -- --quick          quick run while developing
//   npm run bench -- --help           all options
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, loadExtProc } from './ext-proc-proto.js';
import { canPin, compileForBench, pinSelf, startServerChild, type ServerChild } from './children.js';
import { RSS_SAMPLE_MS } from './child-protocol.js';
import {
  ClientPool,
  VARIANTS,
  makeDriverContext,
  runLoad,
  type CloseMode,
  type DriverVariant,
  type LoadResult,
  type Outcome,
} from './envoy-driver.js';
import { MiB, fmt, percentile, renderTable, sortedCopy, type Column } from './report.js';

const HELP = `Usage: npm run bench -- [options]

  --quick                 small counts (200 req at c=1, 1000 at c=32, warm-up 200, 2 rounds)
  --requests N[,N...]     measured requests per server per concurrency level
                          (default 2000 for c=1, 10000 otherwise)
  --concurrency C[,C...]  concurrency levels (default 1,32)
  --chunks N              SSE chunks in the streamed response body (default 50)
  --warmup N              warm-up requests per server per scenario (default 1000)
  --rounds N              split each measurement into N segments run alternately on floor and
                          ours in ABBA order (default 10; quick 2)
  --variants a,b          driver variants (a: allow_mode_override true, b: false, every message)
  --connections N         HTTP/2 connections per server (Envoy: one per worker; default 1)
  --max-streams-per-conn N
                          open a fresh connection after N streams, like Envoy's cluster
                          max_requests_per_connection (default 900, as envoy/envoy.yaml; 0 = never)
  --close reset|graceful  end of stream: reset = as Envoy (half-close + RST_STREAM, default);
                          graceful = half-close and wait for the server's status (no RST_STREAM)
  --ours auto|gateway|full|floor
                          "ours": the gateway (extproc/app) with no stages, the gateway with
                          every stage on embedded backends (full: config/embedded.yaml's stages,
                          every lookup a cache miss), or a copy of the floor as a stand-in
                          (A/A check of the bench's noise); auto = gateway if present (default)
  --pin auto|on|off       run the driver on CPU 0 and both servers on CPU 1 (taskset), so both servers
                          see the same CPU topology (default auto = on when taskset and >= 2 CPUs)
  --threshold X           pass-through target for ours/floor CPU per request (default 1.15)
  --json FILE             also write the results as JSON
  --build compiled|tsx    run the server children compiled by tsc into dist-bench/ (default: what
                          \`npm start\` ships, plain node) or under tsx (no build step)
  --profile-dir DIR       write a V8 CPU profile of each server child into DIR
  --strict                exit 1 when a target check FAILs
`;

interface Args {
  requests: number[];
  concurrency: number[];
  chunks: number;
  warmup: number;
  rounds: number;
  variants: DriverVariant[];
  connections: number;
  maxStreamsPerConn: number;
  closeMode: CloseMode;
  pin: boolean;
  ours: 'gateway' | 'full' | 'floor';
  oursReason: string;
  threshold: number;
  json?: string;
  profileDir?: string;
  build: 'compiled' | 'tsx';
  strict: boolean;
}

function intList(s: string, name: string): number[] {
  const out = s.split(',').map((x) => Number(x.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name}: positive integers expected, got "${s}"`);
  return out;
}

function intArg(s: string | undefined, name: string, dflt: number, min = 1): number {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: integer >= ${min} expected, got "${s}"`);
  return n;
}

function gatewayPresent(): boolean {
  const has = (rel: string): boolean => ['.ts', '.js'].some((ext) => existsSync(path.join(REPO_ROOT, rel + ext)));
  return has('extproc/app') && has('extproc/config/load');
}

function parseCli(): Args {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      requests: { type: 'string' },
      concurrency: { type: 'string' },
      chunks: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      variants: { type: 'string' },
      connections: { type: 'string' },
      'max-streams-per-conn': { type: 'string' },
      close: { type: 'string', default: 'reset' },
      pin: { type: 'string', default: 'auto' },
      ours: { type: 'string', default: 'auto' },
      threshold: { type: 'string' },
      json: { type: 'string' },
      'profile-dir': { type: 'string' },
      build: { type: 'string', default: 'compiled' },
      strict: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const concurrency = values.concurrency ? intList(values.concurrency, 'concurrency') : [1, 32];
  const dflt = (c: number): number => (quick ? (c === 1 ? 200 : 1000) : c === 1 ? 2000 : 10000);
  let requests = concurrency.map(dflt);
  if (values.requests) {
    const r = intList(values.requests, 'requests');
    if (r.length !== 1 && r.length !== concurrency.length) throw new Error('--requests: one value, or one per concurrency level');
    requests = concurrency.map((_, i) => r[r.length === 1 ? 0 : i] ?? 1);
  }
  const variants = (values.variants ?? 'a,b').split(',').map((v) => {
    const key = v.trim();
    if (key !== 'a' && key !== 'b') throw new Error(`--variants: a and/or b, got "${v}"`);
    return VARIANTS[key];
  });
  const present = gatewayPresent();
  const gatewayText = 'gateway (extproc/app.js startGateway, no stages = pass-through pipeline)';
  let ours: 'gateway' | 'full' | 'floor';
  let oursReason: string;
  if (values.ours === 'full') {
    if (!present) throw new Error('--ours full: extproc/app and extproc/config/load not found');
    [ours, oursReason] = ['full', 'gateway with every stage (parse-request, identity, pii, route, semantic-cache, rate-limit, translate, usage) on embedded backends; each lookup misses'];
  } else if (values.ours === 'gateway') {
    if (!present) throw new Error('--ours gateway: extproc/app and extproc/config/load not found');
    [ours, oursReason] = ['gateway', gatewayText];
  } else if (values.ours === 'floor') {
    [ours, oursReason] = ['floor', 'STAND-IN: a second copy of the floor server (--ours floor)'];
  } else if (values.ours === 'auto' || values.ours === undefined) {
    [ours, oursReason] = present
      ? ['gateway', gatewayText]
      : ['floor', 'STAND-IN: extproc/app.js not found, running a second copy of the floor server'];
  } else {
    throw new Error(`--ours: auto, gateway, full or floor, got "${values.ours}"`);
  }
  if (values.build !== 'compiled' && values.build !== 'tsx') throw new Error('--build: compiled or tsx');
  const closeMode = values.close;
  if (closeMode !== 'reset' && closeMode !== 'graceful') throw new Error('--close: reset or graceful');
  if (!['auto', 'on', 'off'].includes(values.pin ?? 'auto')) throw new Error('--pin: auto, on or off');
  const pin = values.pin === 'on' || (values.pin !== 'off' && canPin());
  // Targets (README): pass-through within the machine's noise of the floor (1.15), the full
  // pipeline within 1.6x the floor's CPU per request.
  const threshold = values.threshold === undefined ? (ours === 'full' ? 1.6 : 1.15) : Number(values.threshold);
  if (!(threshold > 0)) throw new Error('--threshold: positive number expected');
  return {
    requests,
    concurrency,
    chunks: intArg(values.chunks, 'chunks', 50),
    warmup: intArg(values.warmup, 'warmup', quick ? 200 : 1000, 0),
    rounds: intArg(values.rounds, 'rounds', quick ? 2 : 10),
    variants,
    connections: intArg(values.connections, 'connections', 1),
    maxStreamsPerConn: intArg(values['max-streams-per-conn'], 'max-streams-per-conn', 900, 0),
    closeMode,
    pin,
    ours,
    oursReason,
    threshold,
    json: values.json,
    profileDir: values['profile-dir'] ? path.resolve(values['profile-dir']) : undefined,
    build: values.build === 'tsx' ? 'tsx' : 'compiled',
    strict: values.strict ?? false,
  };
}

type ServerKey = 'floor' | 'ours';
const SERVER_KEYS: readonly ServerKey[] = ['floor', 'ours'];

/** One server's measurements in one scenario (sum over its segments). */
interface Cell {
  requests: number;
  wallMs: number;
  lat: Float64Array[];
  messages: number;
  okMessages: number;
  outcomes: Record<Outcome, number>;
  overTimeout: number;
  cpuUs: number;
  peakRss: number;
  driverCpuUs: number;
  /** CPU µs per request of each segment, in round order. */
  segmentCpuPerReq: number[];
  firstError?: string;
}

function emptyCell(): Cell {
  return {
    requests: 0,
    wallMs: 0,
    lat: [],
    messages: 0,
    okMessages: 0,
    outcomes: { ok: 0, immediate: 0, closed: 0, goaway: 0, error: 0 },
    overTimeout: 0,
    cpuUs: 0,
    peakRss: 0,
    driverCpuUs: 0,
    segmentCpuPerReq: [],
  };
}

interface Scenario {
  variant: DriverVariant;
  concurrency: number;
  requests: number;
  cells: Record<ServerKey, Cell>;
}

interface Server {
  key: ServerKey;
  child: ServerChild;
  pool: ClientPool;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

async function measureSegment(server: Server, run: () => Promise<LoadResult>, cell: Cell): Promise<void> {
  const before = await server.child.stats(true);
  const r = await run();
  const after = await server.child.stats(false);
  const cpuUs = after.cpuUserUs + after.cpuSystemUs - (before.cpuUserUs + before.cpuSystemUs);
  cell.requests += r.requests;
  cell.wallMs += r.wallMs;
  cell.lat.push(r.latenciesMs);
  cell.messages += r.messages;
  cell.okMessages += r.okMessages;
  for (const k of Object.keys(r.outcomes) as Outcome[]) cell.outcomes[k] += r.outcomes[k];
  cell.overTimeout += r.overTimeout;
  cell.driverCpuUs += r.driverCpuUs;
  cell.firstError ??= r.firstError;
  cell.cpuUs += cpuUs;
  cell.segmentCpuPerReq.push(cpuUs / r.requests);
  cell.peakRss = Math.max(cell.peakRss, after.peakRss);
}

async function main(): Promise<number> {
  const args = parseCli();
  const defs = loadExtProc();
  const servers: Server[] = [];
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    log('\ninterrupted: stopping servers...');
    for (const s of servers) s.pool.close();
    void Promise.allSettled(servers.map((s) => s.child.stop())).then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const scenarios: Scenario[] = [];
  try {
    log(`ours = ${args.oursReason}`);
    if (args.pin && !pinSelf('0')) throw new Error('--pin: taskset failed for the driver');
    const compiledDir = args.build === 'compiled' ? compileForBench() : undefined;
    log(`servers: ${compiledDir ? 'compiled by tsc (dist-bench/), plain node' : 'under tsx'}`);
    const childOpts = { profileDir: args.profileDir, cpus: args.pin ? '1' : undefined, compiledDir };
    const children: [ServerKey, ServerChild][] = [
      ['floor', await startServerChild('floor', 'server-floor.ts', {}, childOpts)],
      [
        'ours',
        args.ours === 'gateway' || args.ours === 'full'
          ? await startServerChild('ours', 'server-gateway.ts', args.ours === 'full' ? { BENCH_PIPELINE: 'full' } : {}, childOpts)
          : await startServerChild('ours', 'server-floor.ts', { BENCH_IMPL_LABEL: 'floor-copy' }, childOpts),
      ],
    ];
    for (const [key, child] of children) {
      const pool = new ClientPool(child.port, args.connections, args.maxStreamsPerConn);
      servers.push({ key, child, pool });
      await pool.waitReady();
      log(`${key}: ${child.impl}, pid ${child.pid}, port ${child.port}, ready in ${child.startupMs} ms`);
    }
    const [floor, ours] = servers;
    if (!floor || !ours) throw new Error('servers not started');

    for (const variant of args.variants) {
      for (const [ci, concurrency] of args.concurrency.entries()) {
        const requests = args.requests[ci] ?? 1;
        const ctx = makeDriverContext(defs, variant, args.chunks);
        const scenario: Scenario = { variant, concurrency, requests, cells: { floor: emptyCell(), ours: emptyCell() } };
        scenarios.push(scenario);
        log(
          `variant (${variant.key}) c=${concurrency}: warm-up ${args.warmup} per server, then ${requests} per server ` +
            `in ${args.rounds} alternating segment(s)`,
        );
        if (args.warmup > 0) {
          for (const s of [floor, ours]) {
            const w = await runLoad(ctx, s.pool, args.warmup, concurrency, args.closeMode, s.child.died);
            if (w.outcomes.error > 0) log(`  ${s.key} warm-up: ${w.outcomes.error} error(s), first: ${w.firstError}`);
          }
        }
        const base = Math.floor(requests / args.rounds);
        for (let r = 0; r < args.rounds; r++) {
          const n = r === args.rounds - 1 ? requests - base * (args.rounds - 1) : base;
          if (n <= 0) continue;
          // ABBA: floor, ours, ours, floor, floor, ours, ... cancels linear drift in machine load.
          const order = r % 2 === 0 ? [floor, ours] : [ours, floor];
          for (const s of order) {
            await measureSegment(
              s,
              () => runLoad(ctx, s.pool, n, concurrency, args.closeMode, s.child.died),
              scenario.cells[s.key],
            );
          }
        }
      }
    }

    const lifetime = await Promise.all(servers.map((s) => s.child.stats(false)));
    const recycled = servers.map((s) => s.pool.recycled);
    printReport(args, scenarios, lifetime.map((l) => l.maxRss), recycled);
    if (args.json) {
      writeFileSync(args.json, JSON.stringify(toJson(args, scenarios), null, 2));
      log(`results written to ${args.json}`);
    }
    const failed = verdicts(args, scenarios).some((v) => !v.pass);
    return failed && args.strict ? 1 : 0;
  } finally {
    for (const s of servers) s.pool.close();
    await Promise.allSettled(servers.map((s) => s.child.stop()));
  }
}

interface Derived {
  p50: number;
  p99: number;
  rps: number;
  cpuPerReq: number;
  cpuPerMsg: number;
  /** Messages per request that completed normally (lost streams excluded). */
  msgsPerReq: number;
  peakMiB: number;
  /** Requests ending in error, immediate_response or an early server close. */
  errors: number;
  goaway: number;
  driverCpuPerReq: number;
}

function derive(c: Cell): Derived {
  const lat = sortedCopy(c.lat);
  return {
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    rps: c.requests / (c.wallMs / 1000),
    cpuPerReq: c.cpuUs / c.requests,
    cpuPerMsg: c.cpuUs / c.messages,
    msgsPerReq: c.outcomes.ok > 0 ? c.okMessages / c.outcomes.ok : Number.NaN,
    peakMiB: c.peakRss / MiB,
    errors: c.outcomes.error + c.outcomes.immediate + c.outcomes.closed,
    goaway: c.outcomes.goaway,
    driverCpuPerReq: c.driverCpuUs / c.requests,
  };
}

interface Verdict {
  variant: string;
  concurrency: number;
  ratio: number;
  /** min/max of the per-round ratios (ours segment r / floor segment r): the run's noise. */
  roundMin: number;
  roundMedian: number;
  roundMax: number;
  pass: boolean;
  /** The per-round ratios fall on both sides of the threshold: one run can't settle it. */
  straddles: boolean;
  msgsDiffer: boolean;
}

function verdicts(args: Args, scenarios: Scenario[]): Verdict[] {
  return scenarios.map((sc) => {
    const f = derive(sc.cells.floor);
    const o = derive(sc.cells.ours);
    const ratio = o.cpuPerReq / f.cpuPerReq;
    const rounds = sc.cells.ours.segmentCpuPerReq
      .map((x, i) => x / (sc.cells.floor.segmentCpuPerReq[i] ?? Number.NaN))
      .sort((a, b) => a - b);
    const mid = rounds.length >> 1;
    const roundMedian = rounds.length % 2 ? (rounds[mid] ?? NaN) : ((rounds[mid - 1] ?? NaN) + (rounds[mid] ?? NaN)) / 2;
    return {
      variant: sc.variant.key,
      concurrency: sc.concurrency,
      ratio,
      roundMin: Math.min(...rounds),
      roundMedian,
      roundMax: Math.max(...rounds),
      pass: ratio <= args.threshold && o.errors === 0,
      straddles: Math.min(...rounds) <= args.threshold && Math.max(...rounds) > args.threshold,
      msgsDiffer: Math.abs(o.msgsPerReq - f.msgsPerReq) > 0.01,
    };
  });
}

function printReport(args: Args, scenarios: Scenario[], maxRss: number[], recycled: number[]): void {
  const out: string[] = [];
  const info = makeDriverContext(loadExtProc(), VARIANTS.b, args.chunks);
  out.push('');
  out.push(
    `ext_proc overhead: node ${process.version}; ${args.connections} HTTP/2 connection(s) per server` +
      (args.maxStreamsPerConn > 0 ? `, renewed every ${args.maxStreamsPerConn} streams` : '') +
      `; request body ${info.requestBodyBytes} B JSON; response ${info.chunks} SSE chunks, ${info.responseBodyBytes} B`,
  );
  out.push(`ours: ${args.oursReason}`);
  out.push(
    `stream end: ${args.closeMode === 'reset' ? 'half-close + RST_STREAM (as Envoy)' : 'half-close, then wait for the server status (no RST_STREAM)'}; ` +
      `${args.rounds} alternating segments per server and scenario; ` +
      (args.pin ? 'driver pinned to CPU 0, servers to CPU 1' : 'no CPU pinning'),
  );
  for (const v of args.variants) out.push(`(${v.key}) ${v.title}`);
  out.push('');
  const columns: Column[] = [
    { title: 'var', align: 'left' },
    { title: 'c' },
    { title: 'server', align: 'left' },
    { title: 'requests' },
    { title: 'p50 ms' },
    { title: 'p99 ms' },
    { title: 'req/s' },
    { title: 'CPU µs/req' },
    { title: 'µs/msg' },
    { title: 'peak RSS MiB' },
    { title: 'msgs/req' },
    { title: 'err' },
    { title: 'goaway' },
    { title: 'ours/floor CPU (rounds: median; min–max)' },
    { title: `≤${args.threshold}`, align: 'left' },
  ];
  const rows: string[][] = [];
  const vs = verdicts(args, scenarios);
  for (const [i, sc] of scenarios.entries()) {
    const v = vs[i];
    for (const key of SERVER_KEYS) {
      const c = sc.cells[key];
      const d = derive(c);
      const isOurs = key === 'ours';
      rows.push([
        `(${sc.variant.key})`,
        String(sc.concurrency),
        isOurs && args.ours === 'floor' ? 'ours*' : key,
        fmt(c.requests),
        fmt(d.p50, 2),
        fmt(d.p99, 2),
        fmt(d.rps),
        fmt(d.cpuPerReq),
        fmt(d.cpuPerMsg, 1),
        fmt(d.peakMiB, 1),
        fmt(d.msgsPerReq, 1),
        d.errors === 0 ? '0' : `${d.errors}!`,
        String(d.goaway),
        isOurs && v ? `${fmt(v.ratio, 2)}× (${fmt(v.roundMedian, 2)}; ${fmt(v.roundMin, 2)}–${fmt(v.roundMax, 2)})` : '',
        isOurs && v
          ? (v.pass ? 'PASS' : 'FAIL') + (v.straddles ? '?' : '') + (v.msgsDiffer ? ' (msgs/req differ)' : '')
          : '',
      ]);
    }
  }
  out.push(renderTable(columns, rows));
  out.push('');
  for (const variant of args.variants) {
    const mine = vs.filter((v) => v.variant === variant.key);
    if (mine.length === 0) continue;
    const worst = Math.max(...mine.map((v) => v.ratio));
    const pass = mine.every((v) => v.pass);
    out.push(
      `pass-through target, variant (${variant.key}): ours/floor CPU per request ≤ ${args.threshold} → ` +
        `${pass ? 'PASS' : 'FAIL'} (worst ${fmt(worst, 2)}× over c=${mine.map((v) => v.concurrency).join(',')})` +
        (args.ours === 'floor' ? '  [ours is a floor stand-in]' : ''),
    );
  }
  out.push('');
  out.push(
    `lifetime peak RSS (getrusage maxRSS): floor ${fmt((maxRss[0] ?? 0) / MiB, 1)} MiB, ours ${fmt((maxRss[1] ?? 0) / MiB, 1)} MiB` +
      (args.maxStreamsPerConn > 0 ? `; connections renewed: floor ${recycled[0] ?? 0}, ours ${recycled[1] ?? 0}` : ''),
  );
  out.push(
    'driver (parent) CPU µs/req floor/ours: ' +
      scenarios
        .map((sc) => `(${sc.variant.key}) c=${sc.concurrency} ${fmt(derive(sc.cells.floor).driverCpuPerReq)}/${fmt(derive(sc.cells.ours).driverCpuPerReq)}`)
        .join('; '),
  );
  for (const sc of scenarios) {
    for (const key of SERVER_KEYS) {
      const c = sc.cells[key];
      const { ok, immediate, closed, goaway, error } = c.outcomes;
      const where = `(${sc.variant.key}) c=${sc.concurrency} ${key}`;
      if (immediate + closed + goaway + error > 0) {
        out.push(`${where}: ok ${ok}, immediate ${immediate}, server-closed ${closed}, goaway ${goaway}, error ${error}; first: ${c.firstError ?? '-'}`);
      }
      if (c.overTimeout > 0) out.push(`${where}: ${c.overTimeout} request(s) waited > 200 ms for a response (Envoy's default message_timeout → 504)`);
    }
  }
  if (scenarios.some((sc) => sc.cells.floor.outcomes.goaway + sc.cells.ours.outcomes.goaway > 0)) {
    out.push(
      'goaway = streams lost when the server dropped the HTTP/2 connection: nghttp2 in Node allows a client ' +
        '1000 RST_STREAMs per connection plus 33/s, then sends GOAWAY(INTERNAL_ERROR), and Envoy resets every ' +
        'ext_proc stream it closes. (grpc-js as a client drops in-flight streams on that GOAWAY.) ' +
        'Avoided by --max-streams-per-conn 900 (Envoy: max_requests_per_connection) or --close graceful.',
    );
  }
  out.push(
    'CPU = server child process.cpuUsage() delta (user+sys, all threads) / requests; µs/msg = per ProcessingRequest; ' +
      `peak RSS = highest RSS sampled every ${RSS_SAMPLE_MS} ms during the measured segments; latency = stream open → last response.`,
  );
  if (vs.some((v) => v.straddles)) {
    out.push(
      `? = the per-round ratios lie on both sides of ${args.threshold}: the machine's noise is as large as the ` +
        'margin; repeat the run (or use more --rounds / --requests) before trusting that verdict.',
    );
  }
  if (args.ours === 'floor') out.push("* ours = a copy of the floor (stand-in): the ratio shows the bench's own noise (A/A).");
  process.stdout.write(`${out.join('\n')}\n`);
}

function toJson(args: Args, scenarios: Scenario[]): unknown {
  const vs = verdicts(args, scenarios);
  return {
    node: process.version,
    ours: args.oursReason,
    chunks: args.chunks,
    connections: args.connections,
    maxStreamsPerConn: args.maxStreamsPerConn,
    closeMode: args.closeMode,
    pinned: args.pin,
    rounds: args.rounds,
    threshold: args.threshold,
    scenarios: scenarios.map((sc, i) => ({
      variant: sc.variant.key,
      concurrency: sc.concurrency,
      requests: sc.requests,
      floor: { ...derive(sc.cells.floor), outcomes: sc.cells.floor.outcomes, segmentCpuPerReq: sc.cells.floor.segmentCpuPerReq },
      ours: { ...derive(sc.cells.ours), outcomes: sc.cells.ours.outcomes, segmentCpuPerReq: sc.cells.ours.segmentCpuPerReq },
      verdict: vs[i],
    })),
  };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
