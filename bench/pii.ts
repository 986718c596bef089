// PII bench: detection quality on the seeded labeled corpus (precision and recall per entity
// type), and speed: scan+rewrite of a 100 KB prompt, the longest event-loop block while the
// async walker rewrites a 2 MB prompt, and restore time per streamed chunk.
//
//   npx tsx bench/pii.ts [--docs N] [--seed S]
import { parseArgs } from 'node:util';
import { builtinEntityTypes } from '../extproc/pii/entities.js';
import { PiiEngine } from '../extproc/pii/engine.js';
import { PiiScanner } from '../extproc/pii/scanner.js';
import { rewriteRequestAsync } from '../extproc/pii/walker.js';
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
