/**
 * The `semantic-cache` stage end to end: the official OpenAI and Anthropic SDKs → the Envoy
 * stand-in (shipped envoy.yaml) → the gateway (parse-request, identity from XFCC, the cache on
 * an embedded PGlite store in a temp directory) → fake providers. A hit never reaches the
 * provider (`provider.requests`), arrives as the SDK expects it (JSON or a stream), and never
 * crosses callers; a store or embeddings endpoint that is down, or slow, costs a miss, never an
 * answer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { activeCacheServices, semanticCacheFactory, type CacheService } from '../../extproc/stages/semanticCache.js';
import { embedText } from '../fakes/embeddings.js';
import { startE2E, type E2E } from './helpers.js';

const spiffe = (sa: string): string => `By=spiffe://cluster.local/ns/gw/sa/envoy;URI=spiffe://cluster.local/ns/shop/sa/${sa}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dirs: string[] = [];
function tempDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `cache-e2e-${tag}-`));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) {
    rmSync(d, { recursive: true, force: true });
    rmSync(`${d}.lock`, { force: true });
  }
});

function gatewayConfig(cache: Record<string, unknown>, stageName = 'semantic-cache', identity: Record<string, unknown> = { sources: ['xfcc'] }): Record<string, unknown> {
  return {
    pipeline: { streamObserver: false, stages: ['parse-request', { name: 'identity', ...identity }, { name: stageName, ...cache }] },
  };
}

/** The cache service a gateway opened on `dataDir`. */
function serviceOn(dataDir: string): CacheService {
  const s = activeCacheServices().find((c) => c.config.store.kind === 'embedded' && c.config.store.dataDir === dataDir);
  if (!s) throw new Error(`no cache service on ${dataDir}`);
  return s;
}

/** Waits until the answer to `prompt` is in the store (finish hooks run after the client's answer). */
async function storedPrompt(svc: CacheService, prompt: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    await svc.flush();
    const r = await svc.store!.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM semantic_cache WHERE prompt = $1', [prompt]);
    if (r.rows[0]!.n !== '0') return;
    if (Date.now() > end) throw new Error('timed out waiting for a cache entry');
    await sleep(10);
  }
}

async function rowsFor(svc: CacheService, prompt: string): Promise<{ n: string; hits: number | null }> {
  await svc.flush();
  const r = await svc.store!.pool.query<{ n: string; hits: number | null }>('SELECT count(*)::text AS n, max(hit_count) AS hits FROM semantic_cache WHERE prompt = $1', [prompt]);
  return r.rows[0]!;
}

describe('OpenAI SDK through Envoy + gateway with semantic-cache (embedded store, local embedder)', () => {
  let e: E2E;
  let svc: CacheService;
  const dataDir = join(tempDir('openai'), 'store');
  const client = (sa = 'checkout') => new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-forwarded-client-cert': spiffe(sa) } });
  const byHeader = (caller: string) => new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-caller-id': caller } });
  const ask = (content: string) => ({ model: 'gpt-4o', messages: [{ role: 'user' as const, content }] });

  beforeAll(async () => {
    e = await startE2E('openai', gatewayConfig({ store: { kind: 'embedded', dataDir } }, 'semantic-cache', { sources: ['xfcc', 'header'] }));
    svc = serviceOn(dataDir);
    expect(await svc.whenReady(120_000)).toBeDefined();
  }, 150_000);
  afterAll(() => e.close());
  beforeEach(() => e.provider.reset());

  it('non-streaming: a miss goes to the provider, the repeat is a hit that never reaches it', async () => {
    const first = await client().chat.completions.create(ask('What is the capital of France?')).withResponse();
    expect(first.response.headers.get('x-gateway-cache')).toBe('miss');
    expect(first.data.choices[0]!.message.content).toBe('This is a fake openai reply to: What is the capital of France?');
    await storedPrompt(svc, 'What is the capital of France?');
    const second = await client().chat.completions.create(ask('What is the capital of France?')).withResponse();
    expect(e.provider.requests).toHaveLength(1);
    expect(second.response.headers.get('x-gateway-cache')).toBe('hit');
    expect(second.response.headers.get('x-gateway-cache-similarity')).toBe('1.0000');
    expect(second.data.choices[0]!.message.content).toBe(first.data.choices[0]!.message.content);
    expect(second.data.choices[0]!.finish_reason).toBe('stop');
    expect(second.data.usage).toEqual({ prompt_tokens: first.data.usage!.prompt_tokens, completion_tokens: first.data.usage!.completion_tokens, total_tokens: first.data.usage!.total_tokens });
  });

  it('streaming: the hit is a well-formed stream the SDK reads to the end, with the usage chunk', async () => {
    const req = { ...ask('Stream me a greeting'), stream: true as const, stream_options: { include_usage: true } };
    const read = async (): Promise<{ text: string; usage: unknown; finish: string | null | undefined; cache: string | null }> => {
      const { data: stream, response } = await client().chat.completions.create(req).withResponse();
      let text = '';
      let usage: unknown;
      let finish: string | null | undefined;
      for await (const c of stream) {
        text += c.choices[0]?.delta?.content ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
        if (c.usage) usage = c.usage;
      }
      return { text, usage, finish, cache: response.headers.get('x-gateway-cache') };
    };
    const first = await read();
    expect(first.cache).toBe('miss');
    await storedPrompt(svc, 'Stream me a greeting');
    const second = await read();
    expect(e.provider.requests).toHaveLength(1);
    expect(second).toMatchObject({ text: first.text, finish: 'stop', cache: 'hit' });
    const u = first.usage as { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    expect(second.usage).toEqual({ prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens });
    expect(second.text).toBe('This is a fake openai reply to: Stream me a greeting');
  });

  it('a trivially reworded question hits; "17 times 23" does not answer "17 times 24"', async () => {
    await client().chat.completions.create(ask('What is 17 times 23?'));
    await storedPrompt(svc, 'What is 17 times 23?');
    const reworded = await client().chat.completions.create(ask('what is 17 times 23')).withResponse();
    expect(reworded.response.headers.get('x-gateway-cache')).toBe('hit');
    expect(Number(reworded.response.headers.get('x-gateway-cache-similarity'))).toBeGreaterThanOrEqual(0.9);
    expect(reworded.data.choices[0]!.message.content).toContain('17 times 23');
    expect(e.provider.requests).toHaveLength(1);
    const other = await client().chat.completions.create(ask('What is 17 times 24?')).withResponse();
    expect(other.response.headers.get('x-gateway-cache')).toBe('miss');
    expect(other.data.choices[0]!.message.content).toContain('17 times 24');
    expect(e.provider.requests).toHaveLength(2);
  });

  it('tenant isolation: another caller with the same prompt, and caller ids crafted to collide in a concatenated scope, all miss', async () => {
    await client('checkout').chat.completions.create(ask('Summarise our confidential Q3 plan'));
    await storedPrompt(svc, 'Summarise our confidential Q3 plan');
    const other = await client('payments').chat.completions.create(ask('Summarise our confidential Q3 plan')).withResponse();
    expect(other.response.headers.get('x-gateway-cache')).toBe('miss');
    expect(e.provider.requests).toHaveLength(2);

    // The victim (header identity) stores under caller "acme", model "x:gpt-4o"; attackers pick
    // caller ids and models whose naive concatenations equal the victim's.
    const victimBody = { model: 'x:gpt-4o', messages: [{ role: 'user' as const, content: 'Our payroll export' }] };
    await byHeader('acme').chat.completions.create(victimBody);
    await storedPrompt(svc, 'Our payroll export');
    const attacks: [string, string][] = [
      ['acme:x', 'gpt-4o'], // "acme" + ":" + "x:gpt-4o"
      ['acmex', ':gpt-4o'], // "acme" + "x:gpt-4o" with no separator
      ['acme:default', 'x:gpt-4o'], // caller + route folded into the caller id
    ];
    for (const [caller, model] of attacks) {
      const r = await byHeader(caller).chat.completions.create({ ...victimBody, model }).withResponse();
      expect(r.response.headers.get('x-gateway-cache'), caller).toBe('miss');
    }
    expect(e.provider.requests).toHaveLength(3 + attacks.length);
    // The victim itself still hits.
    const again = await byHeader('acme').chat.completions.create(victimBody).withResponse();
    expect(again.response.headers.get('x-gateway-cache')).toBe('hit');
  });

  it('cache-control: no-cache goes to the provider, no-store is not stored, max-age=0 serves nothing older', async () => {
    await client().chat.completions.create(ask('Cache control via the SDK'));
    await storedPrompt(svc, 'Cache control via the SDK');
    const noCache = await client().chat.completions.create(ask('Cache control via the SDK'), { headers: { 'cache-control': 'no-cache' } }).withResponse();
    expect(noCache.response.headers.get('x-gateway-cache')).toBe('bypass');
    expect(e.provider.requests).toHaveLength(2);
    const maxAge = await client().chat.completions.create(ask('Cache control via the SDK'), { headers: { 'cache-control': 'max-age=0' } }).withResponse();
    expect(maxAge.response.headers.get('x-gateway-cache')).toBe('miss');
    expect(e.provider.requests).toHaveLength(3);
    const plain = await client().chat.completions.create(ask('Cache control via the SDK')).withResponse();
    expect(plain.response.headers.get('x-gateway-cache')).toBe('hit');

    await client().chat.completions.create(ask('Do not keep this one'), { headers: { 'cache-control': 'no-store' } });
    // A later answer that is stored: the no-store request's finish hook ran before it.
    await client().chat.completions.create(ask('A later question that is stored'));
    await storedPrompt(svc, 'A later question that is stored');
    expect((await rowsFor(svc, 'Do not keep this one')).n).toBe('0');
    const again = await client().chat.completions.create(ask('Do not keep this one')).withResponse();
    expect(again.response.headers.get('x-gateway-cache')).toBe('miss');
    expect(e.provider.requests).toHaveLength(6);
    await storedPrompt(svc, 'Do not keep this one'); // without no-store it is kept
  });

  it('a hit is never stored twice', async () => {
    await client().chat.completions.create(ask('Store me exactly once'));
    await storedPrompt(svc, 'Store me exactly once');
    const stored = svc.counters.stored;
    for (let i = 0; i < 3; i++) {
      const r = await client().chat.completions.create(ask('Store me exactly once')).withResponse();
      expect(r.response.headers.get('x-gateway-cache')).toBe('hit');
    }
    await sleep(20); // finish hooks of the hits (a wrongly stored hit would count here)
    expect(svc.counters.stored).toBe(stored);
    expect(await rowsFor(svc, 'Store me exactly once')).toEqual({ n: '1', hits: 3 });
    expect(e.provider.requests).toHaveLength(1);
  });
});

describe('Anthropic SDK through Envoy + gateway with semantic-cache (clocked: TTL)', () => {
  let e: E2E;
  let svc: CacheService;
  const clock = { now: Date.parse('2026-11-20T10:00:00Z') };
  const clocked = semanticCacheFactory({ name: 'semantic-cache-clocked', clock: () => clock.now }) as unknown as StageFactory<never>;
  const dataDir = join(tempDir('anthropic'), 'store');
  const client = () => new Anthropic({ baseURL: e.envoy.url, apiKey: 'sk-ant-test', maxRetries: 0, defaultHeaders: { 'x-forwarded-client-cert': spiffe('checkout') } });
  const ask = (content: string) => ({ model: 'claude-sonnet-4', max_tokens: 256, messages: [{ role: 'user' as const, content }] });

  beforeAll(async () => {
    e = await startE2E('anthropic', gatewayConfig({ store: { kind: 'embedded', dataDir }, ttlSeconds: 60 }, 'semantic-cache-clocked'), [clocked]);
    svc = serviceOn(dataDir);
    expect(await svc.whenReady(120_000)).toBeDefined();
  }, 150_000);
  afterAll(() => e.close());
  beforeEach(() => e.provider.reset());

  it('non-streaming miss then hit, in Anthropic’s message shape', async () => {
    const first = await client().messages.create(ask('Name a prime number')).withResponse();
    expect(first.response.headers.get('x-gateway-cache')).toBe('miss');
    await storedPrompt(svc, 'Name a prime number');
    const second = await client().messages.create(ask('Name a prime number')).withResponse();
    expect(second.response.headers.get('x-gateway-cache')).toBe('hit');
    expect(e.provider.requests).toHaveLength(1);
    expect(second.data.content).toEqual(first.data.content);
    expect(second.data.stop_reason).toBe('end_turn');
    expect(second.data.usage.output_tokens).toBe(first.data.usage.output_tokens);
  });

  it('streaming miss then hit: the SDK’s stream accumulator reads the replayed event sequence', async () => {
    const read = async () => {
      const stream = client().messages.stream(ask('Tell me about the sea'));
      const message = await stream.finalMessage();
      return message;
    };
    const first = await read();
    await storedPrompt(svc, 'Tell me about the sea');
    const second = await read();
    expect(e.provider.requests).toHaveLength(1);
    expect(second.content).toEqual(first.content);
    expect(second.stop_reason).toBe('end_turn');
    expect(second.usage.output_tokens).toBe(first.usage.output_tokens);
  });

  it('an entry expires after ttlSeconds', async () => {
    await client().messages.create(ask('Short-lived question'));
    await storedPrompt(svc, 'Short-lived question');
    const hit = await client().messages.create(ask('Short-lived question')).withResponse();
    expect(hit.response.headers.get('x-gateway-cache')).toBe('hit');
    clock.now += 61_000;
    const expired = await client().messages.create(ask('Short-lived question')).withResponse();
    expect(expired.response.headers.get('x-gateway-cache')).toBe('miss');
    expect(e.provider.requests).toHaveLength(2);
  });
});

describe('fail open: the store or the embeddings endpoint down or slow', () => {
  it('a postgres url nobody listens on: every request is answered by the provider', async () => {
    const closed = await freePort();
    const e = await startE2E('openai', gatewayConfig({ store: { kind: 'postgres', url: `postgres://cache:secret@127.0.0.1:${closed}/cache` } }));
    try {
      const client = new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-forwarded-client-cert': spiffe('checkout') } });
      for (let i = 0; i < 2; i++) {
        const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Is the cache up?' }] }).withResponse();
        expect(r.response.headers.get('x-gateway-cache')).toBe('miss');
        expect(r.data.choices[0]!.message.content).toContain('Is the cache up?');
      }
      expect(e.provider.requests).toHaveLength(2);
      const svc = activeCacheServices().find((s) => s.config.store.kind === 'postgres')!;
      expect(svc.counters.notReady).toBe(2);
      // The password is never logged.
      expect(JSON.stringify(e.gateway.logs)).not.toContain('secret');
    } finally {
      await e.close();
    }
  }, 60_000);

  describe('embeddings endpoint', () => {
    let e: E2E;
    let svc: CacheService;
    let embed: Server;
    let mode: 'ok' | 'down' | 'slow' = 'ok';
    const dataDir = join(tempDir('embed'), 'store');
    const client = () => new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-forwarded-client-cert': spiffe('checkout') } });
    const ask = (content: string) => ({ model: 'gpt-4o', messages: [{ role: 'user' as const, content }] });

    beforeAll(async () => {
      embed = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          if (mode === 'down') return void req.socket.destroy();
          const reply = () => {
            if (res.destroyed) return;
            const input = (JSON.parse(body) as { input: string[] }).input;
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify({ object: 'list', data: input.map((t, index) => ({ object: 'embedding', index, embedding: embedText(t, 64) })), model: 'fake' }));
          };
          if (mode === 'slow') setTimeout(reply, 1_000);
          else reply();
        });
      });
      await new Promise<void>((r) => embed.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(embed.address() as AddressInfo).port}/v1`;
      e = await startE2E('openai', gatewayConfig({ store: { kind: 'embedded', dataDir }, embeddings: { kind: 'http', url, model: 'fake', dimensions: 64, timeoutMs: 5_000 }, lookupBudgetMs: 100 }));
      svc = serviceOn(dataDir);
      expect(await svc.whenReady(120_000)).toBeDefined();
    }, 150_000);
    afterAll(async () => {
      await e.close();
      await new Promise((r) => embed.close(r));
    });
    beforeEach(() => {
      e.provider.reset();
      mode = 'ok';
    });

    it('down: similar lookups fall open to the provider, exact repeats still hit', async () => {
      await client().chat.completions.create(ask('How do magnets work?'));
      await storedPrompt(svc, 'How do magnets work?');
      mode = 'down';
      const errors = svc.counters.embeddingErrors;
      const reworded = await client().chat.completions.create(ask('how do magnets work')).withResponse();
      expect(reworded.response.headers.get('x-gateway-cache')).toBe('miss');
      expect(reworded.data.choices[0]!.message.content).toContain('how do magnets work');
      expect(svc.counters.embeddingErrors).toBeGreaterThan(errors);
      const exact = await client().chat.completions.create(ask('How do magnets work?')).withResponse();
      expect(exact.response.headers.get('x-gateway-cache')).toBe('hit');
      expect(e.provider.requests).toHaveLength(2);
      expect(e.gateway.logs.some((l) => l['msg'] === 'semantic cache failed open' && l['failure'] === 'embedding')).toBe(true);
    });

    it('slower than the lookup budget: a miss answered by the provider, counted', async () => {
      mode = 'slow';
      const over = svc.counters.overBudget;
      const r = await client().chat.completions.create(ask('Why is the sky blue?')).withResponse();
      expect(r.response.headers.get('x-gateway-cache')).toBe('miss');
      expect(r.data.choices[0]!.message.content).toContain('Why is the sky blue?');
      expect(svc.counters.overBudget).toBe(over + 1);
      expect(e.provider.requests).toHaveLength(1);
    });
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
