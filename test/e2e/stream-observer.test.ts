/**
 * Stream observers end to end: the shipped envoy.yaml plus a second, observability-mode ext_proc
 * filter (`pipeline.streamObserver`, README "Watching a stream costs no round trip"), the gateway,
 * a fake OpenAI provider and the OpenAI SDK streaming through the Envoy stand-in.
 *
 * The main ext_proc stream parses the request and turns its response processing off (mode_override
 * response_header_mode SKIP, response_body_mode NONE); Envoy sends the answer's chunks send-and-go
 * on the observer filter's stream, where an `observe` stage reads them with the main stream's
 * exchange (joined by x-request-id). The client gets the stream unchanged and as it comes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import YAML from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Exchange } from '../../extproc/pipeline/exchange.js';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { requestSummary } from '../../extproc/stages/parseRequest.js';
import { repoRoot } from '../envoy-standin/proto.js';
import { startStandin, type Standin } from '../envoy-standin/standin.js';
import { startFakeProvider, type FakeProvider } from '../fakes/index.js';
import { startTestGateway, testStage, type TestGateway } from '../helpers/gateway.js';
import { bytesOf, envoyYamlPath, recordingFetch, type ReceivedBody } from './helpers.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

const OBSERVER_FILTER = 'envoy.filters.http.ext_proc/observer';
/** Short, so the observability stream (and with it `finish`) ends soon after the response. */
const DEFERRED_CLOSE_MS = 200;

/**
 * The shipped envoy.yaml, which carries the observability-mode filter right after the main ext_proc
 * filter (config/gateway.yaml sets pipeline.streamObserver), with a short deferred close.
 */
function bootstrapWithObserver(): Record<string, any> {
  const doc = YAML.parse(fs.readFileSync(envoyYamlPath, 'utf8')) as Record<string, any>;
  const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const filters: Record<string, any>[] = hcm.http_filters;
  const main = filters.findIndex((f) => f.name === 'envoy.filters.http.ext_proc');
  const observer = filters.findIndex((f) => f.name === OBSERVER_FILTER);
  expect(main).toBeGreaterThanOrEqual(0);
  expect(observer).toBe(main + 1);
  const cfg = filters[observer]!.typed_config as Record<string, any>;
  // Send-and-go: Envoy waits for no answer, so observing adds no round trip per chunk.
  expect(cfg.observability_mode).toBe(true);
  expect(cfg.processing_mode).toMatchObject({ response_header_mode: 'SEND', request_body_mode: 'NONE', response_body_mode: 'STREAMED' });
  cfg.deferred_close_timeout = `${DEFERRED_CLOSE_MS / 1000}s`;
  return doc;
}

/** What the observe stage saw, per exchange. */
interface Observed {
  x: Exchange;
  requestId: string;
  model: string | undefined;
  chunks: Buffer[];
  /** performance.now() of each chunk. */
  at: number[];
  endOfStream: boolean;
}
const observed: Observed[] = [];
interface Finished {
  x: Exchange;
  requestId: string;
  model: string | undefined;
  /** performance.now() when finish ran. */
  at: number;
  /** The request attributes the stream carried (the per-attempt upstream filter sends xds.*). */
  attributes: string[];
}
const finished: Finished[] = [];

const observeStage: StageFactory<never> = testStage('test-observe', {
  responseBodyAccess: 'observe',
  responseBody(x, _out, chunk) {
    let o = observed.find((e) => e.x === x);
    if (!o) observed.push((o = { x, requestId: x.requestId, model: undefined, chunks: [], at: [], endOfStream: false }));
    // Written by parse-request on the main stream; the observer stream runs on the same exchange.
    o.model = x.get(requestSummary)?.model;
    o.chunks.push(Buffer.from(chunk.bytes));
    o.at.push(performance.now());
    if (chunk.endOfStream) o.endOfStream = true;
  },
  finish(x) {
    finished.push({ x, requestId: x.requestId, model: x.get(requestSummary)?.model, at: performance.now(), attributes: Object.keys(x.attributes) });
  },
});

describe('stream observer through the Envoy stand-in (shipped envoy.yaml + observability filter)', () => {
  let provider: FakeProvider;
  let gateway: TestGateway;
  let envoy: Standin;
  let received: ReceivedBody[];
  let client: OpenAI;

  beforeAll(async () => {
    provider = await startFakeProvider({ kind: 'openai' });
    gateway = await startTestGateway({ pipeline: { streamObserver: true, stages: ['parse-request', 'test-observe'] } }, [observeStage]);
    envoy = await startStandin({
      bootstrap: bootstrapWithObserver(),
      extProcAddress: `127.0.0.1:${gateway.port}`,
      clusterEndpoints: {
        llm_chain: [[provider.url], [provider.url], [provider.url], [provider.url]],
        openai: provider.url,
        anthropic: provider.url,
        mistral: provider.url,
      },
      seed: 11,
    });
  });
  afterAll(async () => {
    await envoy?.close();
    await gateway?.close(200);
    await provider?.close();
  });
  beforeEach(() => {
    provider.reset();
    received = [];
    observed.length = 0;
    finished.length = 0;
    client = new OpenAI({ baseURL: `${envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0, fetch: recordingFetch(received) });
  });

  it('the bootstrap with the observer filter passes the strict Envoy schema validator', (ctx) => {
    const tool = path.join(repoRoot, '..', 'shared', 'tools', 'validate-envoy-yaml');
    if (!fs.existsSync(tool)) ctx.skip();
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'observer-')), 'envoy.yaml');
    fs.writeFileSync(file, YAML.stringify(bootstrapWithObserver()));
    const r = spawnSync(tool, [file], { encoding: 'utf8' });
    if (r.status === 2 && /needs Debian/.test(r.stdout)) ctx.skip();
    expect(r.stdout).toContain('OK');
    expect(r.status).toBe(0);
  });

  it('observes the SSE bytes send-and-go; the main stream gets no response body; the client stream is unchanged', async () => {
    provider.script({ holdAfterChunks: 2 });
    const sent = envoy.stats.counter('ext_proc.stream_msgs_sent');
    const started = envoy.stats.counter('ext_proc.streams_started');
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Say hello to the observer' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next(); // arrives while the provider holds the rest
    expect(first.done).toBe(false);
    expect(provider.responses[0]!.outcome).toBe('pending');
    // The observer already reads the first frames while the provider is still holding.
    const held = Buffer.concat(provider.responses[0]!.chunks);
    await until(() => Buffer.concat(observed[0]?.chunks ?? []).length >= held.length);
    expect(Buffer.concat(observed[0]!.chunks).equals(held)).toBe(true);
    expect(provider.responses[0]!.outcome).toBe('pending');
    provider.release();

    let text = '';
    for (let r = first; !r.done; r = await iterator.next()) text += r.value.choices[0]?.delta?.content ?? '';
    expect(text).toContain('Say hello to the observer');
    await received[0]!.done;

    // The client: byte-identical to what the provider wrote, in more than one piece.
    const body = provider.responses[0]!.body;
    expect(bytesOf(received[0]!.chunks).equals(body)).toBe(true);
    expect(received[0]!.chunks.length).toBeGreaterThan(1);

    // The observer: exactly the provider's SSE bytes, chunk by chunk, with the main stream's parse.
    await until(() => observed[0]?.endOfStream === true);
    expect(observed).toHaveLength(1);
    const o = observed[0]!;
    expect(Buffer.concat(o.chunks).equals(body)).toBe(true);
    expect(o.chunks.length).toBeGreaterThan(1);
    expect(o.model).toBe('gpt-4o');

    // The main ext_proc stream: request_headers and request_body only — no response messages.
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.counter('ext_proc.streams_started') - started).toBe(1);
    expect(envoy.stats.counter('ext_proc.stream_msgs_sent') - sent).toBe(2);
    // The gateway saw nothing out of order (a response message on the main stream would be).
    expect(gateway.logs.filter((l) => l['level'] === 'warn' || l['level'] === 'error')).toEqual([]);
    // The observer filter: send-and-go (nothing answered), response headers and every chunk.
    expect(envoy.stats.counter('ext_proc.observer.stream_msgs_received')).toBe(0);
    expect(envoy.stats.counter('ext_proc.observer.spurious_msgs_received')).toBe(0);
    expect(envoy.stats.counter('ext_proc.observer.stream_msgs_sent')).toBeGreaterThanOrEqual(2 + o.chunks.length);

    // finish: once for the exchange the observer read, once the observability stream closed too
    // (Envoy closes it deferred_close_timeout after the request ended).
    await until(() => finished.some((f) => f.x === o.x), DEFERRED_CLOSE_MS + 3000);
    await sleep(DEFERRED_CLOSE_MS + 300);
    const mine = finished.filter((f) => f.x === o.x);
    expect(mine.map((f) => f.model)).toEqual(['gpt-4o']);
    expect(mine[0]!.attributes).toEqual([]); // the HCM filter's stream, not a per-attempt one
    expect(mine[0]!.at).toBeGreaterThan(o.at[o.at.length - 1]!); // after the observer's last chunk
  });

  // The shipped config's per-attempt upstream ext_proc on llm_chain opens one more stream per
  // attempt with the same x-request-id; its gRPC initial metadata (x-gateway-filter: attempt)
  // tells the gateway it is not a request of its own, so router stages and finish do not run again.
  it('runs finish once per HTTP request, not once more for the per-attempt upstream ext_proc stream', async () => {
    const streamsBefore = envoy.stats.counter('upstream_ext_proc.streams_started');
    const msgsBefore = envoy.stats.counter('upstream_ext_proc.stream_msgs_sent');
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'once' }], stream: true });
    for await (const _ of stream) void _;
    await until(() => finished.some((f) => f.attributes.length === 0), DEFERRED_CLOSE_MS + 3000);
    await sleep(DEFERRED_CLOSE_MS + 300);
    expect(envoy.stats.counter('upstream_ext_proc.streams_started') - streamsBefore).toBe(1);
    // Request headers only: the per-attempt stream does not pull the body again.
    expect(envoy.stats.counter('upstream_ext_proc.stream_msgs_sent') - msgsBefore).toBe(1);
    expect(finished).toHaveLength(1);
  });
});
