// Token counter bench: js-tiktoken vs gpt-tokenizer on 1 KB, 100 KB and 2 MB prompts (MB/s),
// count equality on a varied sample for o200k_base and cl100k_base, the inline-vs-worker
// crossover, and the event loop's longest stall while the TokenCounter counts a 2 MB prompt.
// Run: npx tsx bench/tokens.ts
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getEncoding } from 'js-tiktoken';
import { countTokens as gptO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokens as gptCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { TokenCounter } from '../extproc/tokens/counter.js';
import { countBpe } from '../extproc/tokens/bpe.js';
import { mulberry32 } from '../test/helpers/prng.js';

const PLAIN = { disallowedSpecial: new Set<string>() };

const rng = mulberry32;

const WORDS = ('the quick brown fox jumps over lazy dog support ticket network latency customer invoice ' +
  'database migration kubernetes deployment rollback certificate renewal quarterly revenue forecast ' +
  'Überprüfung naïve café résumé straße').split(' ');
const SNIPPETS = [
  'function add(a, b) {\n  return a + b;\n}\n',
  'for (let i = 0; i < items.length; i++) { total += items[i].price * items[i].qty; }\n',
  '{"id": 12345, "name": "widget", "tags": ["a", "b"], "price": 19.99, "ok": true}\n',
  'SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL \'7 days\';\n',
  '東京は日本の首都です。今日は良い天気ですね。',
  'Привет, как дела? Это тестовое сообщение.',
  'مرحبا بالعالم، هذا نص تجريبي.',
  '🚀🔥 emoji run 😀😃😄 👩‍💻 ',
  '    \t\t    \n\n\n   ',
  '3.14159265358979 2718281828 000111222333 0x7fffffff ',
  'aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZW5jb2RlZCB0ZXh0Cg== ',
  '<|endoftext|> <|im_start|>user ',
  'https://example.com/path?query=value&other=1#frag ',
];

/** A varied text of about `bytes` UTF-8 bytes: prose, code, JSON, CJK, Cyrillic, Arabic, emoji, digits, whitespace. */
function sampleText(bytes: number, seed = 1): string {
  const r = rng(seed);
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const p = r() < 0.6 ? Array.from({ length: 5 + Math.floor(r() * 20) }, () => WORDS[Math.floor(r() * WORDS.length)]).join(' ') + '. '
      : SNIPPETS[Math.floor(r() * SNIPPETS.length)]!;
    parts.push(p);
    size += Buffer.byteLength(p);
  }
  return parts.join('');
}

function mbPerSec(fn: (t: string) => number, text: string, minMs = 400): { mbs: number; ms: number } {
  fn(text); // warm
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    fn(text);
    n++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  const perCall = elapsed / n;
  return { mbs: Buffer.byteLength(text) / 1e6 / (perCall / 1000), ms: perCall };
}

async function main(): Promise<void> {
  const tkO200k = getEncoding('o200k_base');
  const tkCl100k = getEncoding('cl100k_base');
  const jsO = (t: string): number => tkO200k.encode(t, [], []).length;
  const jsC = (t: string): number => tkCl100k.encode(t, [], []).length;
  const gO = (t: string): number => gptO200k(t, PLAIN);
  const gC = (t: string): number => gptCl100k(t, PLAIN);

  // 0. bytes per token on the varied sample (for the estimate's bytesPerToken)
  let minRatio = Infinity;
  for (let seed = 1; seed <= 300; seed++) {
    const t = sampleText(50 + (seed * 97) % 4000, seed);
    minRatio = Math.min(minRatio, Buffer.byteLength(t) / Math.max(gO(t), gC(t)));
  }
  const prose = sampleText(100_000, 9).replace(/[^\x20-\x7e]/g, ' ');
  console.log(`bytes per token: smallest on the varied sample ${minRatio.toFixed(2)}; ASCII prose/code mix ${(Buffer.byteLength(prose) / gO(prose)).toFixed(2)} (o200k)`);

  // 1. identical counts on a varied sample
  let checked = 0;
  const mismatches: string[] = [];
  for (let seed = 1; seed <= 300; seed++) {
    const t = sampleText(50 + (seed * 97) % 4000, seed);
    for (const [name, a, b] of [['o200k_base', jsO, gO], ['cl100k_base', jsC, gC]] as const) {
      const x = a(t);
      const y = b(t);
      checked++;
      if (x !== y) mismatches.push(`${name} seed=${seed}: js-tiktoken ${x} gpt-tokenizer ${y}`);
    }
  }
  for (const s of SNIPPETS) for (const [a, b] of [[jsO, gO], [jsC, gC]] as const) { checked++; if (a(s) !== b(s)) mismatches.push(`snippet ${JSON.stringify(s).slice(0, 30)}`); }
  console.log(`count equality: ${checked} texts, ${mismatches.length} mismatches`);
  for (const m of mismatches.slice(0, 10)) console.log('  ' + m);

  // 2. throughput
  console.log('\nthroughput (MB/s, ms per call)');
  for (const size of [1024, 100 * 1024, 2 * 1024 * 1024]) {
    const t = sampleText(size, 7);
    const minMs = size > 1e6 ? 3000 : 600;
    for (const [label, fn] of [['js-tiktoken  o200k', jsO], ['gpt-tokenizer o200k', gO], ['js-tiktoken  cl100k', jsC], ['gpt-tokenizer cl100k', gC]] as const) {
      const { mbs, ms } = mbPerSec(fn, t, minMs);
      console.log(`  ${String(size).padStart(8)} B  ${label.padEnd(21)} ${mbs.toFixed(1).padStart(6)} MB/s  ${ms.toFixed(3).padStart(9)} ms`);
    }
  }

  // 3. inline vs worker round trip on small texts, and the stall while counting 2 MB
  const counter = new TokenCounter({ inlineMaxChars: 0 });
  await counter.count('warm up', 'o200k_base');
  console.log('\ninline vs worker (o200k, median of 200)');
  for (const size of [256, 1024, 4096, 8192, 16384, 65536]) {
    const t = sampleText(size, 11);
    const inl: number[] = [];
    const wrk: number[] = [];
    for (let i = 0; i < 200; i++) {
      let s = performance.now();
      countBpe(t, 'o200k_base');
      inl.push(performance.now() - s);
      s = performance.now();
      await counter.count(t, 'o200k_base');
      wrk.push(performance.now() - s);
    }
    const med = (a: number[]): number => a.sort((x, y) => x - y)[a.length >> 1]!;
    console.log(`  ${String(size).padStart(6)} B  inline ${med(inl).toFixed(3)} ms  worker ${med(wrk).toFixed(3)} ms`);
  }
  await counter.close();

  const big = sampleText(2 * 1024 * 1024, 3);
  for (const mode of ['worker (TokenCounter default)', 'inline on the event loop'] as const) {
    const c = new TokenCounter(mode.startsWith('worker') ? {} : { inlineMaxChars: Number.MAX_SAFE_INTEGER });
    // warm up: loads the encoder in the worker (a text above the inline threshold goes there)
    await c.count(sampleText(64 * 1024, 5), 'o200k_base');
    // Longest gap between 1 ms timers while the count runs = the longest stall of the loop.
    let last = performance.now();
    let maxGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 1);
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    await new Promise((r) => setTimeout(r, 20));
    last = performance.now();
    maxGap = 0;
    const s = performance.now();
    const n = await c.count(big, 'o200k_base');
    const took = performance.now() - s;
    await new Promise((r) => setTimeout(r, 5));
    clearInterval(timer);
    h.disable();
    console.log(`\n2 MB count, ${mode}: ${n} tokens in ${took.toFixed(1)} ms; longest event-loop stall ${maxGap.toFixed(1)} ms (monitorEventLoopDelay max ${(h.max / 1e6).toFixed(1)} ms)`);
    await c.close();
  }
}

await main();
