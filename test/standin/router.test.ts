/**
 * The router on a three-provider chain fixture (test/standin/fixtures; facts §3): fallback across llm_chain priorities with
 * previous_priorities, the per-attempt upstream ext_proc, header_mutation restoring content-length,
 * auto_host_rewrite, timeouts, steering headers, cluster_header routing, and the limits of retries.
 */
import type { EnvoyVersion } from '../envoy-standin/version.js';
import type http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonToStruct, type ProcessingRequest, type ProcessingResponse } from '../envoy-standin/proto.js';
import { startStandin, type Standin } from '../envoy-standin/standin.js';
import {
  attributesOf,
  autoRespond,
  deadAddress,
  header,
  json,
  loadChainFixtureDoc, loadShippedDoc,
  request,
  setHeader,
  sleep,
  startScriptedExtProc,
  startUpstream,
  until,
  type FakeUpstream,
  type Hook,
  type ScriptedExtProc,
  type ScriptedStream,
  type UpstreamHandler,
} from './helpers.js';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

type Provider = 'openai' | 'anthropic' | 'mistral';
const PROVIDERS: Provider[] = ['openai', 'anthropic', 'mistral'];
const PROVIDER_ATTR = "xds.upstream_host_metadata.filter_metadata['ai_gateway']['provider']";

const ok = (name: string): UpstreamHandler => (r, res) => json(res, 200, { from: name, body: r.body.toString() });
const status = (code: number): UpstreamHandler => (_r, res) => json(res, code, { error: code });
const hang: UpstreamHandler = () => new Promise(() => {});

/** A stream is an upstream (per-attempt) one when its first message carries the provider attribute. */
const isUpstreamStream = (s: ScriptedStream) => attributesOf(s.received[0]!)?.[PROVIDER_ATTR] !== undefined;

interface Shipped {
  envoy: Standin;
  ep: ScriptedExtProc;
  up: Record<Provider, FakeUpstream>;
}

/**
 * The shipped config with fake providers. `downstream` / `upstream` hooks answer the HCM and the
 * per-attempt ext_proc messages (default CONTINUE); `tweak` edits the parsed YAML first.
 */
async function shipped(o: {
  providers: Partial<Record<Provider, UpstreamHandler>>;
  downstream?: Hook;
  upstream?: Hook;
  tweak?: (doc: Record<string, any>) => void;
  chain?: (urls: Record<Provider, string>) => string[][];
  envoyVersion?: EnvoyVersion;
}): Promise<Shipped> {
  const ep = await startScriptedExtProc(async (s) => {
    const first = await s.next();
    const hook = attributesOf(first)?.[PROVIDER_ATTR] !== undefined ? o.upstream : o.downstream;
    const r = hook ? await hook(first, s) : undefined;
    if (r !== null) s.send(r ?? { request_headers: {} });
    await autoRespond(hook)(s);
  });
  const up = Object.fromEntries(
    await Promise.all(PROVIDERS.map(async (p) => [p, await startUpstream(o.providers[p] ?? ok(p))] as const)),
  ) as Record<Provider, FakeUpstream>;
  const doc = loadChainFixtureDoc();
  o.tweak?.(doc);
  const urls = Object.fromEntries(PROVIDERS.map((p) => [p, up[p].url])) as Record<Provider, string>;
  const envoy = await startStandin({
    bootstrap: doc,
    extProcAddress: ep.address,
    clusterEndpoints: {
      openai: urls.openai,
      anthropic: urls.anthropic,
      mistral: urls.mistral,
      llm_chain: o.chain ? o.chain(urls) : [[urls.openai], [urls.anthropic], [urls.mistral]],
    },
    seed: 3,
    backOffScale: 0.01,
    envoyVersion: o.envoyVersion,
  });
  cleanup.push(() => envoy.close(), () => ep.close(), ...PROVIDERS.map((p) => () => up[p].close()));
  return { envoy, ep, up };
}

function chainRoute(doc: Record<string, any>): Record<string, any> {
  const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  return hcm.route_config.virtual_hosts[0].routes.find((r: any) => r.name === 'chat_completions_chain').route;
}

const chat = (envoy: Standin, extra: Partial<Parameters<typeof request>[1]> = {}) =>
  request(`${envoy.url}/v1/chat/completions`, {
    headers: { 'content-type': 'application/json', authorization: 'Bearer client-key' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    ...extra,
  });

/** The upstream ext_proc answer ai-gateway's pattern gives: replace body + metadata content_length. */
const translate: Hook = (m) => {
  if (m.request !== 'request_headers') return undefined;
  const provider = String(attributesOf(m)![PROVIDER_ATTR]);
  const body = JSON.stringify({ translated_for: provider });
  const r: ProcessingResponse = {
    request_headers: {
      response: {
        status: 'CONTINUE_AND_REPLACE',
        header_mutation: {
          set_headers: [setHeader(`x-key-${provider}`, `secret-${provider}`), ...(provider === 'anthropic' ? [setHeader(':path', '/v1/messages')] : [])],
          remove_headers: ['authorization'],
        },
        body_mutation: { body: Buffer.from(body) },
      },
    },
    dynamic_metadata: jsonToStruct({ ai_gateway: { content_length: body.length, provider } }),
  };
  return r;
};

describe('fallback chain (llm_chain)', () => {
  it('fails over to the next priority; each attempt gets its own upstream ext_proc stream', async () => {
    const { envoy, ep, up } = await shipped({ providers: { openai: status(503) }, upstream: translate });
    const res = await chat(envoy);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ from: 'anthropic', body: '{"translated_for":"anthropic"}' });

    // Attempt 1 → priority 0 (openai), attempt 2 → priority 1 (anthropic).
    const o = up.openai.requests[0]!;
    const a = up.anthropic.requests[0]!;
    expect(up.mistral.requests).toHaveLength(0);
    expect(o.body.toString()).toBe('{"translated_for":"openai"}');
    expect(a.body.toString()).toBe('{"translated_for":"anthropic"}');
    // CONTINUE_AND_REPLACE removed content-length; the header_mutation filter restored it from
    // the metadata the upstream ext_proc wrote for this attempt.
    expect(o.headers['content-length']).toBe(String(o.body.length));
    expect(a.headers['content-length']).toBe(String(a.body.length));
    expect(o.headers['transfer-encoding']).toBeUndefined();
    // auto_host_rewrite to each endpoint's hostname; attempt count per attempt.
    expect(o.headers.host).toBe('api.openai.com');
    expect(a.headers.host).toBe('api.anthropic.com');
    // No internal header reaches a provider (no include_request_attempt_count, suppress_envoy_headers,
    // x-envoy-external-address removed by the route).
    for (const r of [o, a]) expect(Object.keys(r.headers).filter((k) => k.startsWith('x-envoy-'))).toEqual([]);
    expect(a.url).toBe('/v1/messages');
    // Header mutations of attempt 1 persist into attempt 2 (shared request header map).
    expect(a.headers['x-key-openai']).toBe('secret-openai');
    expect(a.headers['x-key-anthropic']).toBe('secret-anthropic');
    expect(o.headers.authorization).toBeUndefined();

    // One downstream stream + one upstream stream per attempt.
    const upstreamStreams = ep.streams.filter(isUpstreamStream);
    expect(ep.streams).toHaveLength(3);
    expect(upstreamStreams).toHaveLength(2);
    const [u1, u2] = upstreamStreams as [ScriptedStream, ScriptedStream];
    expect(u1.authority).toBe('ext_proc');
    expect(attributesOf(u1.received[0]!)).toEqual({ [PROVIDER_ATTR]: 'openai', 'xds.cluster_name': 'llm_chain', 'xds.route_name': 'chat_completions_chain' });
    expect(attributesOf(u2.received[0]!)![PROVIDER_ATTR]).toBe('anthropic');
    expect(header(u2.received[0]!, 'x-key-openai')).toBe('secret-openai');
    // The upstream filter saw the client's :authority (auto_host_rewrite happens at pool-ready).
    expect(header(u1.received[0]!, ':authority')).toBe(`127.0.0.1:${envoy.port}`);
    // request_headers only (body NONE, response SKIP): each stream is closed after its answer.
    for (const s of upstreamStreams) {
      expect(s.kinds()).toEqual(['request_headers']);
      await until(() => s.cancelled);
    }

    await envoy.stats.waitForRequests(1);
    const log = envoy.stats.accessLog[0]!;
    expect(log).toMatchObject({ status: 200, route: 'chat_completions_chain', upstream_cluster: 'llm_chain', attempts: 2, provider: 'anthropic', upstream_host: `127.0.0.1:${up.anthropic.port}` });
    expect(envoy.stats.requests[0]!.upstreamHosts).toEqual([`127.0.0.1:${up.openai.port}`, `127.0.0.1:${up.anthropic.port}`]);
    expect(envoy.stats.counter('cluster.llm_chain.upstream_rq_retry')).toBe(1);
  });

  it('replays the original request body on every attempt', async () => {
    const { envoy, up } = await shipped({ providers: { openai: status(429), anthropic: status(529) } });
    const res = await chat(envoy);
    expect(res.status).toBe(200);
    const sent = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    for (const p of PROVIDERS) expect(up[p].requests[0]!.body.toString()).toBe(sent);
    expect(JSON.parse(res.text).from).toBe('mistral');
  });

  it('walks every priority, then starts over (previous_priorities resets); x-envoy-max-retries from the processor steers it', async () => {
    const { envoy, up } = await shipped({
      providers: { openai: status(503), anthropic: status(503), mistral: status(503) },
      downstream: (m) =>
        m.request === 'request_headers' ? { request_headers: { response: { header_mutation: { set_headers: [setHeader('x-envoy-max-retries', '3')] } } } } : undefined,
    });
    const res = await chat(envoy);
    // Retries exhausted: the last upstream response is forwarded.
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text)).toEqual({ error: 503 });
    expect(up.openai.requests).toHaveLength(2);
    expect(up.anthropic.requests).toHaveLength(1);
    expect(up.mistral.requests).toHaveLength(1);
    await envoy.stats.waitForRequests(1);
    const order = envoy.stats.requests[0]!.upstreamHosts.map((h) => PROVIDERS.find((p) => h.endsWith(`:${up[p].port}`)));
    expect(order).toEqual(['openai', 'anthropic', 'mistral', 'openai']);
    // The steering header is consumed by the router.
    expect(up.openai.requests[0]!.headers['x-envoy-max-retries']).toBeUndefined();
    expect(envoy.stats.counter('cluster.llm_chain.upstream_rq_retry_limit_exceeded')).toBe(1);
  });

  it('strips client-sent x-envoy-* steering headers before the filters run', async () => {
    const { envoy, ep, up } = await shipped({ providers: { openai: status(503) } });
    const res = await chat(envoy, {
      headers: { 'content-type': 'application/json', 'x-envoy-max-retries': '0', 'x-envoy-upstream-rq-timeout-ms': '1', 'x-envoy-retry-on': '4xx' },
    });
    expect(res.status).toBe(200);
    expect(up.anthropic.requests).toHaveLength(1);
    const first = ep.streams[0]!.received[0]!;
    expect(header(first, 'x-envoy-max-retries')).toBeUndefined();
    expect(header(first, 'x-envoy-upstream-rq-timeout-ms')).toBeUndefined();
    expect(header(first, 'x-envoy-retry-on')).toBeUndefined();
  });

  it('retries x-envoy-retriable-status-codes added by the processor', async () => {
    const { envoy, up } = await shipped({
      providers: { openai: status(418) },
      downstream: (m) =>
        m.request === 'request_headers' ? { request_headers: { response: { header_mutation: { set_headers: [setHeader('x-envoy-retriable-status-codes', '418')] } } } } : undefined,
    });
    expect((await chat(envoy)).status).toBe(200);
    expect(up.anthropic.requests).toHaveLength(1);
  });

  it('fails over on connect failure', async () => {
    const dead = await deadAddress();
    const { envoy, up } = await shipped({ providers: {}, chain: (u) => [[dead], [u.anthropic], [u.mistral]] });
    const res = await chat(envoy);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).from).toBe('anthropic');
    expect(up.openai.requests).toHaveLength(0);
  });

  it('Envoy 1.36 (pinned): ignores an upstream immediate response; the attempt stalls until per_try_idle_timeout, then fails over', async () => {
    const { envoy, up } = await shipped({
      envoyVersion: '1.36',
      providers: {},
      tweak: (d) => (chainRoute(d).retry_policy.per_try_idle_timeout = '0.3s'),
      upstream: (m) =>
        m.request === 'request_headers' && attributesOf(m)?.[PROVIDER_ATTR] === 'openai'
          ? { immediate_response: { status: { code: 'ServiceUnavailable' }, body: Buffer.from('no key for openai') } }
          : undefined,
    });
    const started = Date.now();
    const res = await chat(envoy);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).from).toBe('anthropic');
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(envoy.stats.counter('upstream_ext_proc.send_immediate_resp_upstream_ignored')).toBe(1);
    expect(envoy.stats.counter('cluster.llm_chain.upstream_rq_per_try_idle_timeout')).toBe(1);
    expect(up.openai.requests).toHaveLength(0);
  });

  it('Envoy 1.38: does not retry an immediate response of the upstream ext_proc', async () => {
    const { envoy, up } = await shipped({
      envoyVersion: '1.38',
      providers: {},
      upstream: (m) =>
        m.request === 'request_headers' ? { immediate_response: { status: { code: 'ServiceUnavailable' }, body: Buffer.from('no key for openai') } } : undefined,
    });
    const res = await chat(envoy);
    expect(res.status).toBe(503);
    expect(res.text).toBe('no key for openai');
    for (const p of PROVIDERS) expect(up[p].requests).toHaveLength(0);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.attemptCount).toBe(1);
  });

  it('cannot fail over once response headers went downstream', async () => {
    const { envoy, up } = await shipped({
      providers: {
        openai: (_r, res: http.ServerResponse) => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: {"partial":');
          setTimeout(() => res.destroy(), 30);
        },
      },
      // SSE: the processor switches the response to STREAMED so headers reach the client at once.
      downstream: (m) =>
        m.request === 'response_headers' ? { response_headers: { response: { header_mutation: { remove_headers: ['content-length'] } } }, mode_override: { response_body_mode: 'STREAMED' } } : undefined,
    });
    const res = await chat(envoy);
    expect(res.status).toBe(200);
    expect(res.aborted).toBe(true);
    expect(res.text).toBe('data: {"partial":');
    expect(up.anthropic.requests).toHaveLength(0);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.attemptCount).toBe(1);
  });
});

describe('timeouts', () => {
  it('per_try_idle_timeout moves a stalled attempt to the next provider', async () => {
    const { envoy, up } = await shipped({
      providers: { openai: hang },
      tweak: (doc) => (chainRoute(doc).retry_policy.per_try_idle_timeout = '0.2s'),
    });
    const t0 = Date.now();
    const res = await chat(envoy);
    expect(res.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(up.anthropic.requests).toHaveLength(1);
    expect(envoy.stats.counter('cluster.llm_chain.upstream_rq_per_try_idle_timeout')).toBe(1);
  });

  it('per_try_timeout (from x-envoy-upstream-rq-per-try-timeout-ms) is retried; the route timeout answers 504 without retry', async () => {
    const perTry = await shipped({
      providers: { openai: hang },
      downstream: (m) =>
        m.request === 'request_headers' ? { request_headers: { response: { header_mutation: { set_headers: [setHeader('x-envoy-upstream-rq-per-try-timeout-ms', '150')] } } } } : undefined,
    });
    const r1 = await chat(perTry.envoy);
    expect(r1.status).toBe(200);
    expect(perTry.up.openai.requests[0]!.headers['x-envoy-upstream-rq-per-try-timeout-ms']).toBeUndefined();
    // suppress_envoy_headers: the router does not tell the provider its timeout.
    expect(perTry.up.openai.requests[0]!.headers['x-envoy-expected-rq-timeout-ms']).toBeUndefined();

    const route = await shipped({ providers: { openai: hang }, tweak: (doc) => (chainRoute(doc).timeout = '0.25s') });
    const t0 = Date.now();
    const r2 = await chat(route.envoy);
    expect(r2.status).toBe(504);
    // Envoy's 504 never reaches ext_proc; local_reply_config renders it OpenAI-shaped (flag UT).
    expect(JSON.parse(r2.text)).toEqual({ error: { message: 'The upstream provider did not answer in time.', type: 'timeout', param: null, code: 'timeout' } });
    expect(r2.headers['content-type']).toBe('application/json');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
    expect(route.up.anthropic.requests).toHaveLength(0);
  });

  it('x-envoy-upstream-rq-timeout-ms set by the processor shortens the route timeout', async () => {
    const { envoy, up } = await shipped({
      providers: { openai: hang },
      downstream: (m) =>
        m.request === 'request_headers' ? { request_headers: { response: { header_mutation: { set_headers: [setHeader('x-envoy-upstream-rq-timeout-ms', '150')] } } } } : undefined,
    });
    const t0 = Date.now();
    const res = await chat(envoy);
    expect(res.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(up.openai.requests[0]!.headers['x-envoy-upstream-rq-timeout-ms']).toBeUndefined();
  });

  it('the route timeout covers the whole stream: it resets a response already under way', async () => {
    const { envoy } = await shipped({
      providers: {
        openai: (_r, res: http.ServerResponse) => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: 1\n\n'); // then silence
        },
      },
      tweak: (doc) => (chainRoute(doc).timeout = '0.3s'),
      downstream: (m) => (m.request === 'response_headers' ? { response_headers: {}, mode_override: { response_body_mode: 'STREAMED' } } : undefined),
    });
    const res = await chat(envoy);
    expect(res.status).toBe(200);
    expect(res.text).toBe('data: 1\n\n');
    expect(res.aborted).toBe(true);
  });
});

describe('routing', () => {
  const pick = (cluster: string): Hook => (m) =>
    m.request === 'request_body' ? { request_body: { response: { header_mutation: { set_headers: [setHeader('x-gateway-cluster', cluster)] } } } } : undefined;

  it('sends to the provider cluster named in x-gateway-cluster (route cache cleared by route_cache_action CLEAR)', async () => {
    const { envoy, up, ep } = await shipped({ providers: {}, downstream: pick('mistral') });
    const res = await request(`${envoy.url}/v1/messages`, { body: '{"model":"mistral-large"}' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).from).toBe('mistral');
    const m = up.mistral.requests[0]!;
    expect(m.headers['x-gateway-cluster']).toBeUndefined(); // request_headers_to_remove
    expect(m.headers.host).toBe('api.mistral.ai');
    // suppress_envoy_headers + request_headers_to_remove: no x-envoy-* header reaches the provider.
    expect(Object.keys(m.headers).filter((k) => k.startsWith('x-envoy-'))).toEqual([]);
    // Pinned provider clusters have no upstream ext_proc.
    expect(ep.streams.filter(isUpstreamStream)).toHaveLength(0);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.accessLog[0]).toMatchObject({ route: 'messages_pinned', upstream_cluster: 'mistral' });
  });

  it('answers 503 for an unknown cluster name and 404 when no route matches', async () => {
    const { envoy } = await shipped({ providers: {}, downstream: pick('no-such-cluster') });
    const res = await chat(envoy);
    expect(res.status).toBe(503);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('cluster_not_found');
    const none = await request(`${envoy.url}/v2/other`, { body: '{}' });
    expect(none.status).toBe(404);
  });

  // internal_only_headers: [x-gateway-cluster] in the shipped route_config. Without it the first
  // client would route itself: `ext_proc` sends the request to our gRPC server's cluster, `openai`
  // skips the fallback chain (route chat_completions_pinned).
  it.each(['ext_proc', 'openai'])('ignores a client-sent "x-gateway-cluster: %s": stripped before the filters run', async (value) => {
    const { envoy, ep, up } = await shipped({ providers: {} });
    const res = await chat(envoy, { headers: { 'content-type': 'application/json', 'x-gateway-cluster': value } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).from).toBe('openai'); // the chain's priority 0
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.accessLog[0]).toMatchObject({ route: 'chat_completions_chain', upstream_cluster: 'llm_chain', attempts: 1 });
    // The processor never saw it, nor did the provider.
    const downstream = ep.streams.filter((st) => !isUpstreamStream(st));
    expect(downstream).toHaveLength(1);
    expect(header(downstream[0]!.received[0]!, 'x-gateway-cluster')).toBeUndefined();
    expect(up.openai.requests[0]!.headers['x-gateway-cluster']).toBeUndefined();
  });

  it('routes by the x-gateway-cluster the processor sets, whatever the client sent', async () => {
    const { envoy, up } = await shipped({ providers: {}, downstream: pick('mistral') });
    const res = await chat(envoy, { headers: { 'content-type': 'application/json', 'x-gateway-cluster': 'ext_proc' } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).from).toBe('mistral');
    expect(up.openai.requests).toHaveLength(0);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.accessLog[0]).toMatchObject({ route: 'chat_completions_pinned', upstream_cluster: 'mistral' });
  });

  it('keeps an x-gateway-cluster the processor sets in its request_headers answer (the client’s is gone)', async () => {
    const set: Hook = (m) =>
      m.request === 'request_headers' ? { request_headers: { response: { header_mutation: { set_headers: [setHeader('x-gateway-cluster', 'anthropic')] } } } } : undefined;
    const { envoy, up } = await shipped({ providers: {}, downstream: set });
    const res = await request(`${envoy.url}/v1/messages`, { headers: { 'x-gateway-cluster': 'openai' }, body: '{"model":"claude"}' });
    expect(JSON.parse(res.text).from).toBe('anthropic');
    expect(up.anthropic.requests[0]!.headers['x-gateway-cluster']).toBeUndefined(); // request_headers_to_remove
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.accessLog[0]).toMatchObject({ route: 'messages_pinned', upstream_cluster: 'anthropic' });
  });
});

describe('retry back-off', () => {
  it('sleeps between attempts (scaled) in order', async () => {
    const { envoy } = await shipped({
      providers: { openai: status(503), anthropic: status(503) },
      tweak: (doc) => (chainRoute(doc).retry_policy.retry_back_off = { base_interval: '5s', max_interval: '10s' }),
    });
    // backOffScale 0.01 → first sleep < 50 ms, second < 150 ms: still well under a second.
    const t0 = Date.now();
    const res = await chat(envoy);
    expect(res.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1000);
    await sleep(0);
  });
});
