/**
 * One end-to-end test per Envoy behaviour the gateway relies on, with the real gateway, the Envoy
 * stand-in running the shipped envoy/envoy.yaml, fake providers, and SDK clients. Each behaviour is
 * driven by a small stage defined here (the domain stages that will use them arrive later).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import YAML from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { requestSummary } from '../../extproc/stages/parseRequest.js';
import { startStandin, type Standin } from '../envoy-standin/standin.js';
import { startFakeProvider, type FakeProvider } from '../fakes/index.js';
import { startTestGateway, testStage, type TestGateway } from '../helpers/gateway.js';
import { bytesOf, envoyYamlPath, recordingFetch, type ReceivedBody } from './helpers.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const messages = [{ role: 'user' as const, content: 'Tell me about Envoy' }];

interface Setup {
  gw: TestGateway;
  envoy: Standin;
  openai: FakeProvider;
  anthropic: FakeProvider;
  received: ReceivedBody[];
  oa: OpenAI;
  an: Anthropic;
}
let running: Setup | undefined;
afterEach(async () => {
  if (!running) return;
  await running.envoy.close();
  await running.gw.close(200);
  await running.openai.close();
  await running.anthropic.close();
  running = undefined;
});

/** Gateway with `config` + `stages`, two fake providers, the stand-in on the shipped YAML (optionally edited). */
async function setup(config: Record<string, unknown> = {}, stages: StageFactory<never>[] = [], edit?: (doc: Record<string, any>) => void, extProcAddress?: string): Promise<Setup> {
  const openai = await startFakeProvider({ kind: 'openai' });
  const anthropic = await startFakeProvider({ kind: 'anthropic' });
  const gw = await startTestGateway(config, stages);
  const doc = YAML.parse(fs.readFileSync(envoyYamlPath, 'utf8')) as Record<string, any>;
  edit?.(doc);
  const envoy = await startStandin({
    bootstrap: doc,
    extProcAddress: extProcAddress ?? `127.0.0.1:${gw.port}`,
    clusterEndpoints: { openai: openai.url, anthropic: anthropic.url, mistral: openai.url, llm_chain: [[openai.url], [anthropic.url], [openai.url], [openai.url]] },
    seed: 11,
    backOffScale: 0.01,
  });
  const received: ReceivedBody[] = [];
  const oa = new OpenAI({ baseURL: `${envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0, fetch: recordingFetch(received) });
  const an = new Anthropic({ baseURL: envoy.url, apiKey: 'sk-ant-test', maxRetries: 0, fetch: recordingFetch(received) });
  running = { gw, envoy, openai, anthropic, received, oa, an };
  return running;
}

const mainFilter = (doc: Record<string, any>) => doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config;

describe('Envoy behaviours the gateway relies on, end to end', () => {
  it('mode_override: with the pass-through pipeline Envoy sends the gateway one message per request', async () => {
    const s = await setup();
    await s.oa.chat.completions.create({ model: 'gpt-4o', messages });
    await s.envoy.stats.waitForRequests(1);
    expect(s.envoy.stats.counter('ext_proc.stream_msgs_sent')).toBe(1);
    expect(s.envoy.stats.counter('upstream_ext_proc.stream_msgs_sent')).toBe(1);
    expect(s.envoy.stats.counter('ext_proc.spurious_msgs_received')).toBe(0);
  });

  it('clear_route_cache + cluster_header: a cluster chosen from the body re-routes the request', async () => {
    const route: StageFactory<never> = testStage('test-route', {
      requestBody(x, out) {
        const model = x.get(requestSummary)?.model ?? '';
        out.setHeader('x-gateway-cluster', model.startsWith('claude') ? 'anthropic' : 'openai');
        out.clearRouteCache = true;
      },
    });
    const s = await setup({ pipeline: { stages: ['parse-request', 'test-route'] } }, [route]);
    const msg = await s.an.messages.create({ model: 'claude-sonnet-4', max_tokens: 50, messages });
    expect(msg.type).toBe('message');
    await s.envoy.stats.waitForRequests(1);
    expect(s.envoy.stats.requests[0]).toMatchObject({ routeName: 'messages_pinned', upstreamCluster: 'anthropic' });
    expect(s.anthropic.requests).toHaveLength(1);
    expect(s.anthropic.requests[0]!.headers['x-gateway-cluster']).toBeUndefined(); // request_headers_to_remove: not sent to the provider
    expect(s.openai.requests).toHaveLength(0);
  });

  it('immediate_response: the gateway answers for the provider, which never sees the request', async () => {
    const deny: StageFactory<never> = testStage('test-deny', {
      requestBody: (_x, out) =>
        out.respond({ status: 429, headers: { 'content-type': 'application/json', 'retry-after': '9' }, body: JSON.stringify({ error: { message: 'budget exhausted', type: 'rate_limit_error' } }) }),
    });
    const s = await setup({ pipeline: { stages: ['test-deny'] } }, [deny]);
    const err = await s.oa.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).message).toContain('budget exhausted');
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')).toBe('9');
    expect(s.openai.requests).toHaveLength(0);
    expect(s.envoy.stats.counter('ext_proc.immediate_responses')).toBe(1);
  });

  it('STREAMED override for SSE: a stage that rewrites every chunk still delivers the stream chunk by chunk, without content-length', async () => {
    let chunks = 0;
    const copy: StageFactory<never> = testStage('test-copy', {
      responseBody(_x, out, chunk) {
        chunks++;
        out.replaceBody(Buffer.from(chunk.bytes)); // a rewrite that keeps the bytes
      },
    });
    const s = await setup({ pipeline: { stages: ['test-copy'] } }, [copy]);
    s.openai.script({ holdAfterChunks: 2 });
    const stream = await s.oa.chat.completions.create({ model: 'gpt-4o', messages, stream: true }).withResponse();
    expect(stream.response.headers.get('content-length')).toBeNull();
    const it = stream.data[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false); // first event while the provider holds the rest
    s.openai.release();
    while (!(await it.next()).done);
    await s.received[0]!.done;
    expect(bytesOf(s.received[0]!.chunks).toString()).toBe(bytesOf(s.openai.responses[0]!.chunks).toString());
    expect(chunks).toBeGreaterThan(2); // one round trip per STREAMED chunk
  });

  it('dynamic metadata: what the gateway records reaches Envoy’s access log (receiving namespace ai_gateway)', async () => {
    const tag: StageFactory<never> = testStage('test-tag', {
      requestBody: (x, out) => out.setMetadata('ai_gateway', 'model', x.get(requestSummary)?.model ?? ''),
    });
    const s = await setup({ pipeline: { stages: ['parse-request', 'test-tag'] } }, [tag]);
    await s.oa.chat.completions.create({ model: 'gpt-4o-mini', messages });
    await s.envoy.stats.waitForRequests(1);
    expect(s.envoy.stats.accessLog[0]!['model']).toBe('gpt-4o-mini');
  });

  it('x-envoy-* steering (allow_envoy): a stage can turn retries off for one request', async () => {
    const noRetry: StageFactory<never> = testStage('test-no-retry', {
      requestHeaders: (_x, out) => out.setHeader('x-envoy-max-retries', '0'),
    });
    const s = await setup({ pipeline: { stages: ['test-no-retry'] } }, [noRetry]);
    s.openai.script({ error: { status: 503 } });
    const err = await s.oa.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
    expect((err as { status?: number }).status).toBe(503);
    expect(s.openai.requests.length + s.anthropic.requests.length).toBe(1);
  });

  it('onInvalidRequest: reject turns a body that is not JSON into a 400 from the gateway', async () => {
    const s = await setup({ pipeline: { onInvalidRequest: 'reject', stages: ['parse-request'] } });
    const res = await fetch(`${s.envoy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'model=gpt-4o' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    expect(s.openai.requests).toHaveLength(0);
  });

  it('message_timeout: a stage slower than Envoy’s per-message timeout gets the request a 504 (failure_mode_allow: false)', async () => {
    const slow: StageFactory<never> = testStage('test-slow', { requestBody: () => sleep(600) });
    const s = await setup({ pipeline: { stages: ['test-slow'] } }, [slow], (doc) => (mainFilter(doc).message_timeout = '0.2s'));
    const res = await fetch(`${s.envoy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"gpt-4o"}' });
    expect(res.status).toBe(504);
    expect(s.openai.requests).toHaveLength(0);
  });

  it('override_message_timeout: a slow stage that asks for more time (within max_message_timeout) is not cut off', async () => {
    const patient: StageFactory<never> = testStage('test-patient', {
      async requestBody(x) {
        x.requestMoreTime(2000);
        await sleep(600);
      },
    });
    const s = await setup({ pipeline: { stages: ['test-patient'] } }, [patient], (doc) => (mainFilter(doc).message_timeout = '0.2s'));
    const res = await s.oa.chat.completions.create({ model: 'gpt-4o', messages });
    expect(res.choices[0]!.message.content).toContain('Tell me about Envoy');
    expect(s.envoy.stats.counter('ext_proc.override_message_timeout_received')).toBe(1);
  });

  it('fail closed: with the gateway unreachable Envoy answers 500 and forwards nothing', async () => {
    const s = await setup({}, [], undefined, '127.0.0.1:1');
    const res = await fetch(`${s.envoy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"gpt-4o"}' });
    expect(res.status).toBe(500);
    expect(s.openai.requests).toHaveLength(0);
  });

  it('graceful drain: a streamed answer in flight completes while the gateway shuts down', async () => {
    const copy: StageFactory<never> = testStage('test-copy', {
      responseBody: (_x, out, chunk) => out.replaceBody(Buffer.from(chunk.bytes)),
    });
    const s = await setup({ pipeline: { stages: ['test-copy'] } }, [copy]);
    s.openai.script({ holdAfterChunks: 1 });
    const stream = await s.oa.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const closing = s.gw.close(3000);
    await sleep(50);
    s.openai.release();
    let text = '';
    for (let r = await it.next(); !r.done; r = await it.next()) text += r.value.choices[0]?.delta?.content ?? '';
    expect(text).toContain('Tell me about Envoy');
    await closing;
  });
});

describe("Envoy's own errors reach SDK clients in their dialect (local replies skip ext_proc; local_reply_config)", () => {
  /** The gateway + the shipped YAML with every provider refusing connections. */
  async function deadChain(config: Record<string, unknown> = {}, stages: StageFactory<never>[] = []): Promise<{ gw: TestGateway; envoy: Standin; close: () => Promise<void> }> {
    const dead = await new Promise<string>((resolve) => {
      const s = http.createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(`http://127.0.0.1:${port}`));
      });
    });
    const gw = await startTestGateway(config, stages);
    const envoy = await startStandin({
      envoyYamlPath,
      extProcAddress: `127.0.0.1:${gw.port}`,
      clusterEndpoints: { openai: dead, anthropic: dead, mistral: dead, llm_chain: [[dead], [dead], [dead], [dead]] },
      seed: 3,
      backOffScale: 0.01,
    });
    return { gw, envoy, close: async () => (await envoy.close(), await gw.close(200)) };
  }

  it('an exhausted chain is a 503 the OpenAI and Anthropic SDKs surface with status and message', async () => {
    const { envoy, close } = await deadChain();
    try {
      const oa = new OpenAI({ baseURL: `${envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
      const e1 = await oa.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(OpenAI.APIError);
      expect((e1 as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      expect((e1 as Error).message).toBe('503 No provider in the chain could serve the request (all failed or were unavailable).');
      expect((e1 as InstanceType<typeof OpenAI.APIError>).code).toBe('service_unavailable');

      const an = new Anthropic({ baseURL: envoy.url, apiKey: 'sk-ant-test', maxRetries: 0 });
      const e2 = await an.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 64, messages }).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(Anthropic.APIError);
      expect((e2 as InstanceType<typeof Anthropic.APIError>).status).toBe(503);
      expect((e2 as InstanceType<typeof Anthropic.APIError>).error).toEqual({
        type: 'error',
        error: { type: 'api_error', message: 'No provider in the chain could serve the request (all failed or were unavailable).' },
      });
      await envoy.stats.waitForRequests(2);
      // Envoy's own reply: the gateway never saw a response phase for it.
      expect(envoy.stats.requests.map((r) => r.responseCode)).toEqual([503, 503]);
    } finally {
      await close();
    }
  });

  it('the gateway learns of it anyway: finish hooks run once with outcome no-response', async () => {
    const outcomes: { kind: string; status: number | undefined }[] = [];
    const watcher = testStage('test-outcome', { responseHeaders: () => undefined, finish: (_x, o) => void outcomes.push({ kind: o.kind, status: o.status }) });
    const { envoy, close } = await deadChain({ pipeline: { stages: ['test-outcome'] } }, [watcher]);
    try {
      const oa = new OpenAI({ baseURL: `${envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
      const err = await oa.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      for (let i = 0; i < 100 && outcomes.length === 0; i++) await sleep(10);
      await sleep(50);
      expect(outcomes).toEqual([{ kind: 'no-response', status: undefined }]);
    } finally {
      await close();
    }
  });
});
