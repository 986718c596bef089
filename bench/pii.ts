// PII bench: detection quality on the seeded labeled corpus (precision and recall per entity
// type), and speed: scan+rewrite of a 100 KB prompt, the longest event-loop block while the
// async walker rewrites a 2 MB prompt, and restore time per streamed chunk.
//
//   npm run bench:pii -- [--docs N] [--seed S]   (compiled by tsc, as `npm start` runs; `npx tsx bench/pii.ts` works too, slower)
import { parseArgs } from 'node:util';
import { builtinEntityTypes } from '../extproc/pii/entities.js';
import { PiiEngine } from '../extproc/pii/engine.js';
import { PiiScanner } from '../extproc/pii/scanner.js';
import { rewriteRequestAsync } from '../extproc/pii/walker.js';
import { renderClientError } from '../extproc/errors.js';
import { StreamExchange } from '../extproc/pipeline/exchange.js';
import { HeaderView } from '../extproc/pipeline/headers.js';
import { Pipeline } from '../extproc/pipeline/pipeline.js';
import { piiOptionsSchema } from '../extproc/pii/options.js';
import { parseRequestStage } from '../extproc/stages/parseRequest.js';
import { piiStage } from '../extproc/stages/pii.js';
import { createLogger } from '../extproc/telemetry/logger.js';
import { generateCorpus, promptOfSize } from './pii-corpus.js';
import { fmt, percentile, renderTable } from './report.js';

const { values } = parseArgs({ options: { docs: { type: 'string', default: '3000' }, seed: { type: 'string', default: '42' } } });
const docs = Number(values.docs);
const seed = Number(values.seed);

// ---- quality ------------------------------------------------------------------------------
const scanner = new PiiScanner({ builtins: new Set(builtinEntityTypes), custom: [], deny: [], allow: new Set() });
const corpus = generateCorpus(seed, docs);
const stats = new Map<string, { tp: number; fp: number; fn: number }>();
const stat = (t: string) => {
  let s = stats.get(t);
  if (s === undefined) stats.set(t, (s = { tp: 0, fp: 0, fn: 0 }));
  return s;
};
for (const t of builtinEntityTypes) stat(t);
let chars = 0;
for (const doc of corpus) {
  chars += doc.text.length;
  const want = new Set(doc.labels.map((l) => `${l.type}:${l.start}:${l.end}`));
  const got = new Set(scanner.scan(doc.text).map((d) => `${d.type}:${d.start}:${d.end}`));
  for (const k of got) stat(k.split(':')[0] as string)[want.has(k) ? 'tp' : 'fp']++;
  for (const k of want) if (!got.has(k)) stat(k.split(':')[0] as string).fn++;
}
const ratio = (a: number, b: number): string => (b === 0 ? '-' : (a / b).toFixed(4));
console.log(`PII detection quality: ${docs} documents (seed ${seed}), ${fmt(chars / 1024)} KiB, exact-span matching\n`);
console.log(
  renderTable(
    [{ title: 'entity', align: 'left' }, { title: 'planted' }, { title: 'TP' }, { title: 'FP' }, { title: 'FN' }, { title: 'precision' }, { title: 'recall' }],
    [...stats].map(([t, s]) => [t, String(s.tp + s.fn), String(s.tp), String(s.fp), String(s.fn), ratio(s.tp, s.tp + s.fp), ratio(s.tp, s.tp + s.fn)]),
  ),
);

// ---- speed: 100 KB scan + rewrite ---------------------------------------------------------
const engine = PiiEngine.fromOptions({});
const prompt100k = promptOfSize(seed + 1, 100 * 1024);
const runs = 300;
const times = new Float64Array(runs);
let entities = 0;
for (let i = 0; i < runs + 30; i++) {
  const s = engine.session();
  const t0 = performance.now();
  s.rewrite(prompt100k);
  const dt = performance.now() - t0;
  if (i >= 30) times[i - 30] = dt;
  if (i === 0) for (const n of s.counts.values()) entities += n;
}
times.sort();
console.log(`\n100 KB prompt (${entities} entities) scan + rewrite: p50 ${percentile(times, 50).toFixed(3)} ms, p99 ${percentile(times, 99).toFixed(3)} ms`);

// ---- 2 MB prompt through the async walker: longest event-loop block --------------------------
async function longestBlock(body: Record<string, unknown>): Promise<{ total: number; maxGap: number }> {
  let last = performance.now();
  let maxGap = 0;
  let done = false;
  const tick = (): void => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  const t0 = performance.now();
  await rewriteRequestAsync(body, 'openai', engine.session());
  const total = performance.now() - t0;
  done = true;
  await new Promise((r) => setImmediate(r));
  return { total, maxGap };
}
const prompt2m = promptOfSize(seed + 2, 2 * 1024 * 1024);
const oneString = { model: 'm', messages: [{ role: 'user', content: prompt2m }] };
const chunks: string[] = [];
for (let i = 0; i < prompt2m.length; i += 40 * 1024) chunks.push(prompt2m.slice(i, i + 40 * 1024));
const manyParts = { model: 'm', messages: chunks.map((c, i) => ({ role: i % 2 ? 'assistant' : 'user', content: c })) };
await longestBlock(oneString); // warm-up
for (const [label, body] of [['one 2 MB string', oneString], [`${chunks.length} messages of 40 KB`, manyParts]] as const) {
  const r = [await longestBlock(body), await longestBlock(body), await longestBlock(body)];
  const worst = Math.max(...r.map((x) => x.maxGap));
  const total = r.map((x) => x.total).sort((a, b) => a - b)[1] as number;
  console.log(`2 MB prompt, async walker, ${label}: total ${total.toFixed(1)} ms, longest event-loop block ${worst.toFixed(2)} ms`);
}

// ---- restore per streamed chunk --------------------------------------------------------------
const session = engine.session();
const rewritten = session.rewrite(prompt100k);
const pieces: string[] = [];
for (let i = 0, k = 0; i < rewritten.length; k++) {
  const n = 3 + (k * 7) % 18; // 3..20 chars, like model deltas
  pieces.push(rewritten.slice(i, i + n));
  i += n;
}
const restoreTimes = new Float64Array(pieces.length);
for (let round = 0; round < 3; round++) {
  const r = session.restorer();
  for (let i = 0; i < pieces.length; i++) {
    const t0 = performance.now();
    r.push(pieces[i] as string);
    restoreTimes[i] = (performance.now() - t0) * 1000;
  }
  r.flush();
}
restoreTimes.sort();
const withPh = pieces.filter((p) => p.includes('<')).length;
console.log(
  `restore: ${pieces.length} chunks of 3-20 chars (${withPh} with '<', ${session.table.size} placeholders issued): p50 ${percentile(restoreTimes, 50).toFixed(2)} µs, p99 ${percentile(restoreTimes, 99).toFixed(2)} µs per chunk`,
);

// ---- restore per chunk through the stage: SSE parse, event rewrite, re-serialisation ----------
// What the router pipeline does per STREAMED chunk of an OpenAI answer with `pii` on: parse the
// chunk's events once, restore their deltas (placeholders split across events), serialise.
{
  const headers = (h: Record<string, string>): HeaderView => new HeaderView(Object.entries(h).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })));
  const pipeline = new Pipeline([parseRequestStage.create(undefined as never, {} as never), piiStage.create(piiOptionsSchema.parse({}), {} as never)], {
    onInvalidRequest: 'continue',
    renderError: renderClientError,
  });
  const rewrittenPrompt = engine.session().rewrite(promptOfSize(seed + 3, 8 * 1024));
  const deltas: string[] = [];
  for (let i = 0, k = 0; i < rewrittenPrompt.length; k++) {
    const n = 3 + ((k * 7) % 18);
    deltas.push(rewrittenPrompt.slice(i, i + n));
    i += n;
  }
  const frame = (content: string): Buffer =>
    Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`);
  const frames = deltas.map(frame);
  const perChunk: number[] = [];
  let restored = 0;
  const log = createLogger('error');
  for (let round = 0; round < 6; round++) {
    const x = new StreamExchange(log, 8 * 1024 * 1024);
    x.requestHeaders = headers({ ':path': '/v1/chat/completions', 'content-type': 'application/json' });
    x.requestBody = Buffer.from(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: promptOfSize(seed + 3, 8 * 1024) }] }));
    await pipeline.run('requestBody', x, { bytes: x.requestBody, endOfStream: true });
    x.responseHeaders = headers({ ':status': '200', 'content-type': 'text/event-stream' });
    await pipeline.run('responseHeaders', x);
    for (let i = 0; i < frames.length; i++) {
      const chunk = { bytes: frames[i]!, endOfStream: i === frames.length - 1 };
      const t0 = performance.now();
      const out = pipeline.run('responseBody', x, chunk);
      const dt = (performance.now() - t0) * 1000;
      if (out instanceof Promise) throw new Error('the response path should answer synchronously');
      if (round > 0) perChunk.push(dt);
      if (round === 0 && out.body && out.body.includes('@')) restored++;
    }
  }
  // The request side of the same stage: a 4 KB chat body with entities, parse + redact + serialise.
  const smallBody = Buffer.from(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: promptOfSize(seed + 4, 4 * 1024) }] }));
  const reqTimes: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const x = new StreamExchange(log, 8 * 1024 * 1024);
    x.requestHeaders = headers({ ':path': '/v1/chat/completions', 'content-type': 'application/json' });
    x.requestBody = smallBody;
    const t0 = performance.now();
    const out = pipeline.run('requestBody', x, { bytes: smallBody, endOfStream: true });
    const dt = (performance.now() - t0) * 1000;
    if (out instanceof Promise) throw new Error('a small body should be handled synchronously');
    if (i >= 200) reqTimes.push(dt);
  }
  const reqSorted = Float64Array.from(reqTimes).sort();
  console.log(`request through the stage (4 KB chat body, parse + redact + serialise): p50 ${percentile(reqSorted, 50).toFixed(1)} µs, p99 ${percentile(reqSorted, 99).toFixed(1)} µs`);
  const sorted = Float64Array.from(perChunk).sort();
  console.log(
    `restore through the stage (OpenAI SSE, one event per chunk, ${frames.length} chunks of 3-20 chars, ${restored} carrying a restored email): p50 ${percentile(sorted, 50).toFixed(2)} µs, p99 ${percentile(sorted, 99).toFixed(2)} µs per chunk`,
  );
}
