/**
 * `npm run demo`: one LLM call after another through the whole path, in one process — no Envoy
 * binary, no Docker.
 *
 *   official SDK ──HTTP/SSE──▶ Envoy stand-in ──gRPC ext_proc──▶ gateway (parse-request, debug logs)
 *   (openai,                   (envoy/envoy.yaml    (HCM filter + one upstream
 *    @anthropic-ai/sdk)         as shipped)          stream per attempt)
 *                                   │
 *                                   └──HTTP──▶ fake OpenAI / fake Anthropic (test/fakes)
 *
 * After each call it prints the request, what the client got, every gateway log line carrying
 * that call's `x-request-id` (the `decided` lines say what each ext_proc answer did: names and
 * sizes only), and the stand-in's view (route, attempts and hosts, ext_proc counters).
 *
 * Why two stand-ins. The gateway has no routing or translation stage yet, so nothing sets
 * `x-gateway-cluster` and every call takes the shipped `llm_chain` route, whose priority 0 is
 * OpenAI: an Anthropic `/v1/messages` call would reach the OpenAI fake (404). Each provider
 * therefore gets its own stand-in, both loading the same envoy.yaml and talking to the same
 * gateway; in each, every cluster (all three `llm_chain` priorities and the pinned clusters) points
 * at that provider's fake, as test/e2e/helpers.ts does. The endpoint hostnames stay as in the YAML
 * (`auto_host_rewrite`), so the `Host` a fake receives tells which priority an attempt went to:
 * the 429 call shows the chain walk api.openai.com → api.anthropic.com → api.mistral.ai even
 * though, without translation, all three attempts land on the OpenAI fake.
 *
 * `runDemo({ print })` is exported for test/demo/demo.test.ts; run directly it prints to stdout.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startGateway, type Gateway } from '../../extproc/app.js';
import { parseConfig } from '../../extproc/config/load.js';
import { builtinStages, stageCheck } from '../../extproc/stages/registry.js';
import { startStandin, type Standin } from '../envoy-standin/standin.js';
import { runStagesDemo } from './stagesDemo.js';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { faults, startFakeProvider, type FakeProvider } from '../fakes/index.js';

/** Where the demo writes its lines (console.log when run directly). */
export type Print = (line: string) => void;

export interface DemoOptions {
  print?: Print;
  /** Pause between streamed events at the fakes, so deltas visibly trickle in (default 40 ms). */
  chunkDelayMs?: number;
}

/** One gateway log line (parsed JSON). */
type LogLine = Record<string, unknown>;

/** What one call of the demo produced, for tests. */
export interface StepResult {
  title: string;
  requestId: string;
  /** HTTP status the client got. */
  status: number;
  /** Short text the client got (reply or error message). */
  text: string;
  /** Deltas received, for streaming calls. */
  deltas: string[];
  /** Gateway log lines with this request id. */
  gatewayLines: LogLine[];
  /** The stand-in's record: attempts and the Host each attempt was sent with. */
  attempts: { host: string; hostHeader: string; providerStatus: number }[];
  /** Stand-in counters changed by this call. */
  counters: Record<string, number>;
}

export interface DemoResult {
  steps: StepResult[];
  durationMs: number;
}

const envoyYamlPath = join(import.meta.dirname, '../../envoy/envoy.yaml');

/**
 * The shipped envoy.yaml with `preserve_external_request_id: true`, so each demo call keeps the
 * x-request-id it chose and its gateway log lines can be shown next to it. The shipped config
 * leaves it off on purpose: at the edge Envoy replaces a client's id, so no client can make its
 * request share an id with another one in flight.
 */
function demoBootstrap(): unknown {
  const doc = parseYaml(readFileSync(envoyYamlPath, 'utf8')) as { static_resources: { listeners: { filter_chains: { filters: { typed_config: Record<string, unknown> }[] }[] }[] } };
  for (const l of doc.static_resources.listeners) for (const fc of l.filter_chains) for (const f of fc.filters) f.typed_config['preserve_external_request_id'] = true;
  return doc;
}

/** What the client side of a step reports back. */
interface ClientOutcome {
  status: number;
  text: string;
  note?: string;
  deltas?: string[];
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const print: Print = options.print ?? ((line) => console.log(line));
  const chunkDelayMs = options.chunkDelayMs ?? 40;
  const t0 = performance.now();
  const logs: LogLine[] = [];
  const closers: (() => Promise<void>)[] = [];

  try {
    // ---- start everything ------------------------------------------------------------------------
    const gateway: Gateway = await startGateway({
      config: parseConfig(
        {
          server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 1000 },
          logging: { level: 'debug' },
          pipeline: { stages: ['parse-request'] },
        },
        [stageCheck(builtinStages)],
      ),
      logSink: (line) => logs.push(JSON.parse(line) as LogLine),
    });
    closers.push(() => gateway.close(500));

    const openaiFake = await startFakeProvider({ kind: 'openai' });
    closers.push(() => openaiFake.close());
    const anthropicFake = await startFakeProvider({ kind: 'anthropic' });
    closers.push(() => anthropicFake.close());

    /** A stand-in on the shipped envoy.yaml whose clusters all lead to `fake` (see the header comment). */
    const standinFor = async (fake: FakeProvider): Promise<Standin> => {
      const s = await startStandin({
        bootstrap: demoBootstrap(),
        extProcAddress: `127.0.0.1:${gateway.port}`,
        clusterEndpoints: { llm_chain: [[fake.url], [fake.url], [fake.url], [fake.url]], openai: fake.url, anthropic: fake.url, mistral: fake.url },
        seed: 1,
      });
      closers.push(() => s.close());
      return s;
    };
    const openaiEnvoy = await standinFor(openaiFake);
    const anthropicEnvoy = await standinFor(anthropicFake);

    // maxRetries: 0 — the SDKs' own retries are off, so every retry seen below is Envoy's.
    const openai = new OpenAI({ baseURL: `${openaiEnvoy.url}/v1`, apiKey: 'sk-demo', maxRetries: 0 });
    const anthropic = new Anthropic({ baseURL: anthropicEnvoy.url, apiKey: 'sk-ant-demo', maxRetries: 0 });

    const listening = logs.find((l) => l['msg'] === 'gateway listening');
    print('LLM gateway demo — SDK → Envoy stand-in (envoy/envoy.yaml) → ext_proc gateway → fake provider');
    print(`  gateway     127.0.0.1:${gateway.port}  stages: parse-request  log level: debug  (${listening ? 'logged "gateway listening"' : 'no start line'})`);
    print(`  fakes       openai ${openaiFake.url}   anthropic ${anthropicFake.url}`);
    print(`  stand-ins   ${openaiEnvoy.url} → openai fake   ${anthropicEnvoy.url} → anthropic fake`);
    print(`              (one per provider: no routing stage yet, so every call takes llm_chain; see demo.ts)`);

    // ---- the calls ------------------------------------------------------------------------------
    const steps: StepResult[] = [];
    const total = 5;
    const run = async (
      title: string,
      envoy: Standin,
      fake: FakeProvider,
      requestId: string,
      request: string,
      send: (since: () => number) => Promise<ClientOutcome>,
    ): Promise<void> => {
      const n = steps.length + 1;
      const before = new Map(envoy.stats.counters);
      const recorded = envoy.stats.requests.length;
      const started = performance.now();
      const startedWall = Date.now();
      const since = () => Math.round(performance.now() - started);

      print('');
      print(`━━ ${n}/${total}  ${title} ${'━'.repeat(Math.max(3, 78 - title.length))}`);
      print(`  request   ${request}  x-request-id: ${requestId}`);
      const out = await send(since);
      print(`  client    ${out.status}  ${quote(out.text)}${out.note ? `  (${out.note})` : ''}`);

      // Let the call settle: the stand-in has written its access log, and the gateway has closed
      // every ext_proc stream the stand-in opened for it (Envoy closes them after the response).
      await envoy.stats.waitForRequests(recorded + 1);
      const counters = counterDelta(before, envoy.stats.counters);
      const streams = (counters['ext_proc.streams_started'] ?? 0) + (counters['upstream_ext_proc.streams_started'] ?? 0);
      const mine = () => logs.filter((l) => l['request_id'] === requestId);
      await until(() => mine().filter((l) => l['msg'] === 'stream closed').length >= streams, 2000);
      const gatewayLines = mine();

      // Gateway view.
      const answers = (counters['ext_proc.stream_msgs_received'] ?? 0) + (counters['upstream_ext_proc.stream_msgs_received'] ?? 0);
      const decided = gatewayLines.filter((l) => l['msg'] === 'decided').length;
      print(`  gateway   ${gatewayLines.length} log lines with request_id ${requestId}, in order (ms since the request was sent):`);
      for (const l of gatewayLines) print(`            ${`+${Date.parse(String(l['time'])) - startedWall} ms`.padEnd(9)} ${describeLogLine(l)}`);
      print(
        `            ${answers} ext_proc answers, ${decided} with a "decided" line` +
          (answers > decided ? `; the other ${answers - decided} were pre-encoded (fast path) and log nothing` : ''),
      );

      // Stand-in view.
      const rec = envoy.stats.requests[recorded]!;
      const log = envoy.stats.accessLog[recorded] ?? {};
      const chain = envoy.config.clusters.get('llm_chain');
      const attemptsSeen = fake.requests.filter((r) => r.headers['x-request-id'] === requestId);
      const attempts = rec.upstreamHosts.map((host, i) => {
        const r = attemptsSeen.find((q) => q.headers['x-envoy-attempt-count'] === String(i + 1)) ?? attemptsSeen[i];
        return { host, hostHeader: r?.headers['host'] ?? '?', providerStatus: r ? (fake.responses[r.index]?.status ?? 0) : 0 };
      });
      print(
        `  envoy     route ${rec.routeName ?? '-'} → cluster ${rec.upstreamCluster ?? '-'} → ${rec.responseCode ?? '-'}` +
          `${rec.responseCodeDetails ? ` (${rec.responseCodeDetails})` : ''} in ${rec.durationMs} ms;` +
          ` access log: attempts=${String(log['attempts'])} upstream_host=${String(log['upstream_host'])}`,
      );
      let foreignSlot = false;
      attempts.forEach((a, i) => {
        // auto_host_rewrite sent the endpoint hostname of the priority this attempt picked.
        const priority = chain?.priorities.findIndex((p) => p.some((e) => e.hostname === a.hostHeader)) ?? -1;
        const slot = chain?.priorities[priority]?.[0]?.metadata['ai_gateway']?.['provider'];
        if (slot !== undefined && slot !== fake.kind) foreignSlot = true;
        const where = priority >= 0 ? ` (llm_chain priority ${priority}${slot !== undefined ? `, ${String(slot)} in envoy.yaml` : ''})` : '';
        print(`            attempt ${i + 1} → ${a.host} = ${fake.kind} fake  Host: ${a.hostHeader}${where}  → ${a.providerStatus}`);
      });
      if (foreignSlot && attempts.length === 1) {
        print(`            (this stand-in points every llm_chain priority at the ${fake.kind} fake: with no routing stage yet, the call takes priority 0)`);
      }
      print(`            ext_proc on the HCM filter:   ${streamSummary(counters, 'ext_proc.')}`);
      print(`            ext_proc upstream, per try:   ${streamSummary(counters, 'upstream_ext_proc.')}`);
      const shown = /^(upstream_)?ext_proc\.(streams_started|streams_closed|stream_msgs_sent|stream_msgs_received)$/;
      const other = Object.entries(counters).filter(([k]) => !shown.test(k));
      if (other.length > 0) print(`            other stats: ${other.map(([k, v]) => `${k} +${v}`).join('  ')}`);

      steps.push({ title, requestId, status: out.status, text: out.text, deltas: out.deltas ?? [], gatewayLines, attempts, counters });
    };

    const question = 'What does an ext_proc server do?';

    await run('OpenAI SDK, non-streaming', openaiEnvoy, openaiFake, 'demo-1-openai', `POST /v1/chat/completions  model=gpt-4o-mini  "${question}"`, async () => {
      const { data, response } = await openai.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: question }] }, { headers: { 'x-request-id': 'demo-1-openai' } })
        .withResponse();
      const u = data.usage;
      return { status: response.status, text: data.choices[0]?.message.content ?? '', note: u ? `usage ${u.prompt_tokens} in / ${u.completion_tokens} out` : undefined };
    });

    openaiFake.setDefault({ chunkDelayMs });
    await run(
      'OpenAI SDK, streaming',
      openaiEnvoy,
      openaiFake,
      'demo-2-openai-stream',
      'POST /v1/chat/completions  model=gpt-4o-mini  stream=true include_usage  "Stream me a hello"',
      async (since) => {
        const { data: stream, response } = await openai.chat.completions
          .create(
            { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream me a hello' }], stream: true, stream_options: { include_usage: true } },
            { headers: { 'x-request-id': 'demo-2-openai-stream' } },
          )
          .withResponse();
        print(`  stream    ${response.status} ${response.headers.get('content-type') ?? ''} — deltas as they arrive:`);
        const deltas: string[] = [];
        let usage = '';
        for await (const chunk of stream) {
          const d = chunk.choices[0]?.delta?.content;
          if (d) {
            deltas.push(d);
            print(`            ${`+${since()} ms`.padEnd(9)} ${JSON.stringify(d)}`);
          }
          if (chunk.usage) usage = `usage ${chunk.usage.prompt_tokens} in / ${chunk.usage.completion_tokens} out`;
        }
        return { status: response.status, text: deltas.join(''), deltas, note: `${deltas.length} deltas${usage ? `, ${usage}` : ''}` };
      },
    );
    openaiFake.setDefault(undefined);

    anthropicFake.setDefault({ chunkDelayMs });
    await run(
      'Anthropic SDK, streaming',
      anthropicEnvoy,
      anthropicFake,
      'demo-3-anthropic-stream',
      'POST /v1/messages  model=claude-sonnet-4  max_tokens=200  stream  "Hello Claude"',
      async (since) => {
        const stream = anthropic.messages.stream(
          { model: 'claude-sonnet-4', max_tokens: 200, messages: [{ role: 'user', content: 'Hello Claude' }] },
          { headers: { 'x-request-id': 'demo-3-anthropic-stream' } },
        );
        const deltas: string[] = [];
        print('  stream    text deltas as they arrive:');
        stream.on('text', (d) => {
          deltas.push(d);
          print(`            ${`+${since()} ms`.padEnd(9)} ${JSON.stringify(d)}`);
        });
        const final = await stream.finalMessage();
        const { response } = await stream.withResponse();
        return {
          status: response.status,
          text: deltas.join(''),
          deltas,
          note: `${deltas.length} deltas, stop_reason ${final.stop_reason}, usage ${final.usage.input_tokens} in / ${final.usage.output_tokens} out`,
        };
      },
    );
    anthropicFake.setDefault(undefined);

    // The SDKs always send JSON, so this one is a plain fetch: a form-encoded body labelled JSON.
    const notJson = 'model=gpt-4o-mini&prompt=hello';
    await run('A body that is not JSON (plain fetch)', openaiEnvoy, openaiFake, 'demo-4-not-json', `POST /v1/chat/completions  content-type: application/json  body: ${JSON.stringify(notJson)}`, async () => {
      const res = await fetch(`${openaiEnvoy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-demo', 'x-request-id': 'demo-4-not-json' },
        body: notJson,
      });
      const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
      return { status: res.status, text: body.error?.message ?? '', note: 'the provider’s own error: the gateway passed the body through' };
    });

    openaiFake.script(faults.rateLimited(2), faults.rateLimited(2), faults.rateLimited(2), faults.rateLimited(2));
    await run(
      'Provider answers 429 on every attempt: Envoy walks llm_chain',
      openaiEnvoy,
      openaiFake,
      'demo-5-rate-limited',
      'POST /v1/chat/completions  model=gpt-4o-mini  "Are you busy?"  (fake scripted: 429 ×4)',
      async () => {
        const err = await openai.chat.completions
          .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Are you busy?' }] }, { headers: { 'x-request-id': 'demo-5-rate-limited' } })
          .then(() => new Error('expected a 429'))
          .catch((e: unknown) => e);
        if (!(err instanceof OpenAI.APIError)) throw err;
        return { status: err.status ?? 0, text: err.error && typeof err.error === 'object' && 'message' in err.error ? String(err.error.message) : err.message, note: `${err.constructor.name}, retry-after: ${err.headers?.get('retry-after') ?? '-'}` };
      },
    );

    // ---- anything the gateway logged outside a request, beyond the start line ------------------
    const stray = logs.filter((l) => l['request_id'] === undefined && l['msg'] !== 'gateway listening');
    const known = new Set(steps.map((s) => s.requestId));
    const foreign = logs.filter((l) => typeof l['request_id'] === 'string' && !known.has(l['request_id']));
    if (stray.length + foreign.length > 0) {
      print('');
      print('Other gateway log lines:');
      for (const l of [...stray, ...foreign]) print(`  ${describeLogLine(l)}`);
    }

    // ---- summary --------------------------------------------------------------------------------
    const sum = (k: string) => steps.reduce((n, s) => n + (s.counters[k] ?? 0), 0);
    const streams = sum('ext_proc.streams_started') + sum('upstream_ext_proc.streams_started');
    const messages = sum('ext_proc.stream_msgs_sent') + sum('upstream_ext_proc.stream_msgs_sent');
    const walk = steps[4]?.attempts.map((a) => a.hostHeader).join(' → ') ?? '';
    print('');
    print('━━ What you just saw ' + '━'.repeat(66));
    const summary = wrap(
        `Four calls from the official OpenAI and Anthropic SDKs and one plain fetch went through an Envoy stand-in running the shipped envoy/envoy.yaml to fake providers, ` +
          `and for each one Envoy consulted the gateway over gRPC ext_proc: one stream on the HTTP filter plus one per upstream attempt on llm_chain — ${streams} streams and ${messages} messages in all. ` +
          `With parse-request as the only stage, the gateway's first answer on each stream turns off what no stage reads (Envoy then sends just the request headers and the buffered body), ` +
          `reads the JSON body once per stream and changes nothing, so replies and streamed deltas reached the clients exactly as the providers sent them. ` +
          `The body that was not JSON was logged as not inspectable ("continue" policy) and passed through untouched, so the provider itself answered ${steps[3]?.status}. ` +
          `The provider that answered 429 made Envoy's retry policy walk the chain's priorities (Host ${walk}, all served here by the OpenAI fake because no translation stage exists yet) ` +
          `until num_retries ran out, then hand the 429 and its retry-after to the client. Every gateway line above carries the request's x-request-id; ` +
          `routing, translation, PII, cache, limits and usage stages will add their decisions to these same lines as they land.`,
        92,
      );
    for (const line of summary) print(line);
    print(`(finished in ${Math.round(performance.now() - t0)} ms)`);
    return { steps, durationMs: performance.now() - t0 };
  } finally {
    // Stand-ins first (they hold gRPC streams to the gateway and HTTP to the fakes), then the
    // gateway, then the fakes: the reverse of the start order.
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
}

// ---- formatting helpers -------------------------------------------------------------------------

/** `kind`, `set_headers`, … of a gateway log line as `key=value`, after its message. */
function describeLogLine(l: LogLine): string {
  const skip = new Set(['time', 'level', 'msg', 'request_id']);
  const fields = Object.entries(l)
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => (k === 'kind' ? String(v) : `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`));
  const level = l['level'] === 'debug' ? '' : `[${String(l['level'])}] `;
  const msg = String(l['msg']);
  const tail = l['msg'] === 'decided' && fields.length === 1 ? `${fields[0]}  (no mutation, no override)` : fields.join('  ');
  return `${level}${msg.padEnd(14)} ${tail}`;
}

function streamSummary(c: Record<string, number>, prefix: string): string {
  const started = c[`${prefix}streams_started`] ?? 0;
  return `${started} stream${started === 1 ? '' : 's'}, ${c[`${prefix}stream_msgs_sent`] ?? 0} messages sent, ${c[`${prefix}stream_msgs_received`] ?? 0} answers received, ${c[`${prefix}streams_closed`] ?? 0} closed`;
}

function counterDelta(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

function quote(text: string, max = 72): string {
  const t = text.replace(/\s+/g, ' ');
  return JSON.stringify(t.length > max ? `${t.slice(0, max - 1)}…` : t);
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

async function until(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

// ---- run directly -------------------------------------------------------------------------------

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Part 1: what each layer sees for five calls; part 2 (stagesDemo.ts): every stage at work.
  runDemo().then(() => runStagesDemo()).then(
    () => {
      // Everything is closed, so the process ends by itself. If a handle leaked, say so and stop.
      setTimeout(() => {
        console.error('demo: something kept the process alive after closing; exiting');
        process.exit(0);
      }, 2000).unref();
    },
    (err: unknown) => {
      console.error('demo failed:', err);
      process.exitCode = 1;
    },
  );
}
