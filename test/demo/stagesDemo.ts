/**
 * The second half of `npm run demo`: every stage at work, through the Envoy stand-in running the
 * bootstrap rendered from the demo's gateway config, with the official SDKs and fake providers:
 * a redacted prompt and its restored answer (served cross-dialect: an OpenAI client, an Anthropic
 * model), a cache miss then a hit, a fallback when the first step answers 429, a 429 from the
 * gateway's own limit, and the cost records the usage stage wrote.
 *
 * `runStagesDemo({ print })` is exported for test/demo/demo.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { faults } from '../fakes/index.js';
import { routingConfigRaw, startRoutingE2E } from '../e2e/routingHelpers.js';
import type { Print } from './demo.js';

/** What the demo observed, for its test. */
export interface StagesDemoResult {
  providerSawEmail: boolean;
  clientGotEmail: boolean;
  servedBy: string | null;
  cache: (string | null)[];
  fallback: { model: string | null; attempts: string | null };
  crossDialectText: string;
  limited: { status: number; retryAfter: string | null };
  records: Record<string, unknown>[];
}

const EMAIL = 'dana.reyes@example.org';

export async function runStagesDemo(options: { print?: Print } = {}): Promise<StagesDemoResult> {
  const print = options.print ?? ((l: string) => console.log(l));
  const dir = mkdtempSync(join(tmpdir(), 'gateway-demo-'));
  const raw = routingConfigRaw({
    pipeline: {
      stages: [
        'parse-request',
        { name: 'identity', sources: ['header'], header: 'x-caller-id' },
        'pii',
        'route',
        { name: 'semantic-cache', store: { kind: 'embedded', dataDir: join(dir, 'cache') } },
        { name: 'rate-limit', backend: 'memory', limits: [{ scope: 'caller', requestsPerMinute: 5 }] },
        'translate',
        { name: 'usage', ledger: false },
      ],
    },
  });
  const e = await startRoutingE2E(raw);
  const logs = (e.gateway as unknown as { logs: Record<string, unknown>[] }).logs;
  const oa = (caller: string) => new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-client', maxRetries: 0, defaultHeaders: { 'x-caller-id': caller } });
  const section = (title: string) => print(`\n━━ ${title} ${'━'.repeat(Math.max(0, 86 - title.length))}`);
  try {
    print('\n════ Part 2: every stage (identity, pii, route, semantic-cache, rate-limit, translate, usage) ════');
    print('  (stand-in on the bootstrap rendered from this config; the default chain is claude-opus-4 → gpt-4o → claude-sonnet-4 → mistral-large)');
    for (let i = 0; i < 400 && !logs.some((l) => l['msg'] === 'semantic cache ready'); i++) await new Promise((r) => setTimeout(r, 25));

    section('A. PII redacted on the way out, restored on the way back; OpenAI client served by Claude');
    const question = `Draft a short note to ${EMAIL} about the renewal`;
    const first = await oa('finance-app').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: question }] }).withResponse();
    const sent = JSON.stringify(e.fakes.anthropic.requests.at(-1)?.json ?? {});
    const answer = first.data.choices[0]?.message.content ?? '';
    print(`  provider received  ${sent.includes(EMAIL) ? 'the address (!)' : 'a placeholder: ' + (sent.match(/<EMAIL_\d+>/)?.[0] ?? '?')}`);
    print(`  client received    ${JSON.stringify(answer)}`);
    print(`  x-gateway-model    ${first.response.headers.get('x-gateway-model')}  (x-gateway-route ${first.response.headers.get('x-gateway-route')})`);
    print(`  x-gateway-cache    ${first.response.headers.get('x-gateway-cache')}`);

    print('  (this answer holds a placeholder, so the cache does not store it: no PII is ever cached)');

    section('B. A cache miss, then the same question reworded trivially: a hit, no provider call');
    const ask = (content: string) => oa('finance-app').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content }] }).withResponse();
    const miss = await ask('What is our refund policy for annual plans?');
    print(`  1st  x-gateway-cache ${miss.response.headers.get('x-gateway-cache')}   provider calls: ${e.fakes.anthropic.requests.length}`);
    await new Promise((r) => setTimeout(r, 300)); // stored after it completed, off the critical path
    const again = await ask('what is our refund policy for annual plans');
    print(`  2nd  x-gateway-cache ${again.response.headers.get('x-gateway-cache')}    provider calls: ${e.fakes.anthropic.requests.length}  similarity ${again.response.headers.get('x-gateway-cache-similarity')}`);
    print(`       client received ${JSON.stringify(again.data.choices[0]?.message.content ?? '')}`);

    section('C. The first step answers 429: Envoy retries on the next priority, translate rewrites for OpenAI');
    e.fakes.anthropic.script(faults.rateLimited(1));
    const fb = await oa('support-bot').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Summarise our SLA in one line' }] }).withResponse();
    print(`  x-gateway-model    ${fb.response.headers.get('x-gateway-model')}  x-gateway-attempts ${fb.response.headers.get('x-gateway-attempts')}`);
    print(`  client received    ${JSON.stringify(fb.data.choices[0]?.message.content ?? '')}`);

    section('D. An Anthropic client, streamed; claude-opus-4 is cooling down after its 429, so the chain starts at gpt-4o');
    const an = new Anthropic({ baseURL: e.envoy.url, apiKey: 'sk-ant-client', maxRetries: 0, defaultHeaders: { 'x-caller-id': 'research' } });
    const stream = an.messages.stream({ model: 'gpt-4o', max_tokens: 64, messages: [{ role: 'user', content: 'Hello from Anthropic land' }] });
    const msg = await stream.finalMessage();
    const text = msg.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    print(`  client received    ${JSON.stringify(text)} (stop_reason ${msg.stop_reason})`);

    section('E. The gateway’s own limit: 5 requests per minute per caller');
    let limited = { status: 200, retryAfter: null as string | null };
    for (let i = 0; i < 6; i++) {
      try {
        const r = await oa('batch-job').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `job ${i}` }] }).withResponse();
        print(`  request ${i + 1}          200 (x-ratelimit-remaining-requests ${r.response.headers.get('x-ratelimit-remaining-requests')})`);
      } catch (err) {
        if (!(err instanceof OpenAI.APIError)) throw err;
        limited = { status: err.status ?? 0, retryAfter: err.headers?.get('retry-after') ?? null };
        print(`  request ${i + 1}          ${err.status} ${JSON.stringify(err.message)} retry-after ${limited.retryAfter}`);
      }
    }

    section('F. The cost records the usage stage wrote (one JSON log line per request)');
    await new Promise((r) => setTimeout(r, 300));
    const records = logs.filter((l) => l['msg'] === 'usage');
    for (const r of records) {
      print(
        `  ${String(r['caller']).padEnd(12)} ${String(r['served_model'] ?? '-').padEnd(16)} status ${String(r['status'] ?? '-').padEnd(4)} cache ${String(r['cache'] ?? '-').padEnd(6)} tokens ${String(r['input_tokens'] ?? 0)}/${String(r['output_tokens'] ?? 0)}  cost ${String(r['cost_micros'] ?? 0)} µ$`,
      );
    }
    return {
      providerSawEmail: sent.includes(EMAIL),
      clientGotEmail: answer.includes(EMAIL),
      servedBy: first.response.headers.get('x-gateway-model'),
      cache: [miss.response.headers.get('x-gateway-cache'), again.response.headers.get('x-gateway-cache')],
      fallback: { model: fb.response.headers.get('x-gateway-model'), attempts: fb.response.headers.get('x-gateway-attempts') },
      crossDialectText: text,
      limited,
      records,
    };
  } finally {
    await e.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
