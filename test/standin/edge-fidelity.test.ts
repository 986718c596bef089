/**
 * Envoy behaviours of issue 7 on the shipped envoy/envoy.yaml (and small variants of it): who
 * counts as internal (use_remote_address, xff_num_trusted_hops, internal_address_config, the XFF
 * fallback), local_reply_config, local replies skipping ext_proc, linear buffering of large bodies,
 * reset-before-request, %RESPONSE_CODE_DETAILS% via_upstream, content-length in mutations, and the
 * HTTP/2 refusal. Sources are cited in test/envoy-standin/README.md.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startStandin, type Standin, type StandinOptions } from '../envoy-standin/standin.js';
import {
  autoRespond,
  deadAddress,
  json,
  loadShippedDoc,
  request,
  setHeader,
  standinFor,
  startScriptedExtProc,
  startUpstream,
  until,
  type FakeUpstream,
  type Hook,
  type ScriptedExtProc,
  type UpstreamHandler,
} from './helpers.js';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

type Doc = Record<string, any>;
const hcmOf = (d: Doc) => d.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const headerOf = (m: { request_headers?: { headers?: { headers?: { key?: string }[] } } }, name: string) =>
  (m.request_headers?.headers?.headers ?? []).some((h) => h.key === name);

interface Setup {
  envoy: Standin;
  ep: ScriptedExtProc;
  openai: FakeUpstream;
  anthropic: FakeUpstream;
}

async function shipped(o: { hook?: Hook; tweak?: (d: Doc) => void; openai?: UpstreamHandler; anthropic?: UpstreamHandler; dead?: boolean; extra?: Partial<StandinOptions> } = {}): Promise<Setup> {
  const ep = await startScriptedExtProc(autoRespond(o.hook));
  const openai = await startUpstream(o.openai ?? ((r, res) => json(res, 200, { from: 'openai', bytes: r.body.length })));
  const anthropic = await startUpstream(o.anthropic ?? ((_r, res) => json(res, 200, { from: 'anthropic' })));
  const doc = loadShippedDoc();
  o.tweak?.(doc);
  const dead = o.dead ? await deadAddress() : undefined;
  const a = dead ?? openai.url;
  const b = dead ?? anthropic.url;
  const envoy = await startStandin({
    bootstrap: doc,
    extProcAddress: ep.address,
    clusterEndpoints: { openai: a, anthropic: b, mistral: a, llm_chain: [[a], [b], [a], [a]] },
    seed: 5,
    backOffScale: 0.01,
    ...o.extra,
  });
  cleanup.push(() => envoy.close(), () => ep.close(), () => openai.close(), () => anthropic.close());
  return { envoy, ep, openai, anthropic };
}

const chatBody = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });

describe('internal requests (use_remote_address, xff_num_trusted_hops, internal_address_config)', () => {
  it('a forged X-Forwarded-For: 10.1.1.1 with x-gateway-cluster and x-envoy-max-retries changes nothing', async () => {
    let calls = 0;
    const { envoy, ep, openai, anthropic } = await shipped({
      // Every provider fails: the chain's own num_retries (2) bounds the attempts to 3.
      openai: (_r, res) => {
        calls++;
        json(res, 503, { error: 'down' });
      },
      anthropic: (_r, res) => {
        calls++;
        json(res, 503, { error: 'down' });
      },
    });
    const res = await request(`${envoy.url}/v1/chat/completions`, {
      headers: {
        'content-type': 'application/json',
        'x-forwarded-for': '10.1.1.1',
        'x-gateway-cluster': 'anthropic',
        'x-envoy-max-retries': '9',
        'x-envoy-retriable-status-codes': '503',
      },
      body: chatBody,
    });
    expect(res.status).toBe(503);
    await envoy.stats.waitForRequests(1);
    const rec = envoy.stats.requests[0]!;
    // x-gateway-cluster did not pin the route, and the retry budget is the route's.
    expect(rec.routeName).toBe('chat_completions_chain');
    expect(rec.attemptCount).toBe(4); // the default chain's four steps
    expect(calls).toBe(4);
    // The processor never saw the client's control headers; the request was external.
    const first = ep.streams[0]!.received[0]!;
    for (const h of ['x-gateway-cluster', 'x-envoy-max-retries', 'x-envoy-retriable-status-codes', 'x-envoy-internal']) expect(headerOf(first, h)).toBe(false);
    // use_remote_address: the peer is appended to XFF and reported as the external address...
    const seen = [...openai.requests, ...anthropic.requests][0]!;
    expect(seen.headers['x-forwarded-for']).toBe('10.1.1.1,127.0.0.1');
    expect(headerOf(first, 'x-envoy-external-address')).toBe(true);
    // ...which the route removes before the provider, with every other x-envoy-* header.
    expect(Object.keys(seen.headers).filter((k) => k.startsWith('x-envoy-') || k.startsWith('x-gateway-'))).toEqual([]);
  });

  it('the XFF fallback (no use_remote_address) trusts one internal-looking XFF address — why envoy.yaml sets it', async () => {
    let calls = 0;
    const { envoy } = await shipped({
      tweak: (d) => {
        const hcm = hcmOf(d);
        delete hcm.use_remote_address;
        hcm.internal_address_config = { cidr_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }] };
      },
      openai: (_r, res) => {
        calls++;
        json(res, 503, {});
      },
      anthropic: (_r, res) => {
        calls++;
        json(res, 503, {});
      },
    });
    const res = await request(`${envoy.url}/v1/chat/completions`, {
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '10.1.1.1', 'x-envoy-max-retries': '0' },
      body: chatBody,
    });
    expect(res.status).toBe(503);
    // Internal: x-envoy-max-retries survived and cut the retries to none.
    expect(calls).toBe(1);
    // Two XFF addresses are never internal.
    calls = 0;
    await request(`${envoy.url}/v1/chat/completions`, {
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '1.2.3.4, 10.1.1.1', 'x-envoy-max-retries': '0' },
      body: chatBody,
    });
    expect(calls).toBe(4);
  });

  it('xff_num_trusted_hops 1 takes the client address from XFF, the request stays external', async () => {
    const { envoy, ep } = await shipped({ tweak: (d) => (hcmOf(d).xff_num_trusted_hops = 1) });
    await request(`${envoy.url}/v1/chat/completions`, { headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' }, body: chatBody });
    const hs = ep.streams[0]!.received[0]!.request_headers!.headers!.headers!;
    const v = (k: string) => hs.find((h) => h.key === k)?.raw_value?.toString();
    expect(v('x-envoy-external-address')).toBe('203.0.113.9');
    expect(v('x-forwarded-for')).toBe('203.0.113.9,127.0.0.1');
  });
});

describe('local replies (skip ext_proc, local_reply_config)', () => {
  it('an exhausted chain: 503 in the OpenAI shape on /v1/chat/completions, the Anthropic shape on /v1/messages; the processor never sees a response', async () => {
    const { envoy, ep } = await shipped({ dead: true });
    const oa = await request(`${envoy.url}/v1/chat/completions`, { headers: { 'content-type': 'application/json' }, body: chatBody });
    expect(oa.status).toBe(503);
    expect(oa.headers['content-type']).toBe('application/json');
    expect(JSON.parse(oa.text)).toEqual({
      error: { message: 'No provider in the chain could serve the request (all failed or were unavailable).', type: 'server_error', param: null, code: 'service_unavailable' },
    });
    const an = await request(`${envoy.url}/v1/messages`, { headers: { 'content-type': 'application/json' }, body: chatBody });
    expect(an.status).toBe(503);
    expect(JSON.parse(an.text)).toEqual({ type: 'error', error: { type: 'api_error', message: 'No provider in the chain could serve the request (all failed or were unavailable).' } });
    await envoy.stats.waitForRequests(2);
    expect(envoy.stats.requests.map((r) => r.responseCodeDetails)).toEqual(['upstream_reset_before_response_started{connection_failure}', 'upstream_reset_before_response_started{connection_failure}']);
    // Every processor stream saw request phases only, then was reset.
    for (const s of ep.streams) expect(s.received.some((m) => m.request === 'response_headers' || m.request === 'response_body')).toBe(false);
    // (The observability filter's streams end on their own deferred_close_timeout.)
    await until(() => ep.streams.filter((s) => (s.received[0] as { observability_mode?: boolean } | undefined)?.observability_mode !== true).every((s) => s.cancelled));
  });

  it("leaves the gateway's own immediate responses alone (no response flag)", async () => {
    const { envoy } = await shipped({
      hook: (m) =>
        m.request === 'request_headers' && !m.attributes?.['envoy.filters.http.ext_proc']
          ? {
              immediate_response: {
                status: { code: 'ServiceUnavailable' },
                headers: { set_headers: [setHeader('content-type', 'application/json')] },
                body: Buffer.from('{"error":{"message":"budget exhausted"}}'),
              },
            }
          : undefined,
    });
    const res = await request(`${envoy.url}/v1/chat/completions`, { headers: { 'content-type': 'application/json' }, body: chatBody });
    expect(res.status).toBe(503);
    expect(res.text).toBe('{"error":{"message":"budget exhausted"}}');
    expect(res.headers['content-type']).toBe('application/json');
  });

  it('413 over the buffer limit (declared content-length) in both dialects', async () => {
    const tweak = (d: Doc) => {
      d.static_resources.listeners[0].per_connection_buffer_limit_bytes = 1000;
      for (const m of hcmOf(d).local_reply_config.mappers)
        for (const f of m.filter.and_filter.filters) if (f.header_filter?.header?.range_match) f.header_filter.header.range_match.start = 1001;
    };
    const { envoy, ep } = await shipped({ tweak });
    const big = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(3000) }] });
    const oa = await request(`${envoy.url}/v1/chat/completions`, { headers: { 'content-type': 'application/json' }, body: big });
    expect(oa.status).toBe(413);
    expect(JSON.parse(oa.text).error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large' });
    const an = await request(`${envoy.url}/v1/messages`, { headers: { 'content-type': 'application/json' }, body: big });
    expect(an.status).toBe(413);
    expect(JSON.parse(an.text)).toMatchObject({ type: 'error', error: { type: 'request_too_large' } });
    // A chunked body (no content-length) keeps Envoy's text/plain reply: the documented limit.
    const ch = await request(`${envoy.url}/v1/chat/completions`, { headers: { 'content-type': 'application/json' }, parts: [big.slice(0, 2000), big.slice(2000)], chunked: true });
    expect(ch.status).toBe(413);
    expect(ch.text).toBe('Payload Too Large');
    for (const s of ep.streams) expect(s.received.map((m) => m.request)).toEqual(['request_headers']);
  });
});

describe('buffering is linear', () => {
  it('passes a 5 MB request body through the BUFFERED ext_proc filter', { timeout: 30000 }, async () => {
    const { envoy, openai } = await standinWithBigMessages();
    const content = 'y'.repeat(5 * 1024 * 1024);
    const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] });
    const res = await request(`${envoy.url}/v1/chat/completions`, { headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ from: 'openai', bytes: body.length });
    expect(openai.requests[0]!.body.equals(Buffer.from(body))).toBe(true);
  });
});

/** The shipped config (BUFFERED request body on the router filter) with a CONTINUE processor. */
function standinWithBigMessages(): Promise<Setup> {
  return shipped();
}

describe('smaller differences', () => {
  it('%RESPONSE_CODE_DETAILS% is via_upstream for a response from the provider', async () => {
    const { envoy } = await shipped();
    await request(`${envoy.url}/v1/chat/completions`, { headers: { 'content-type': 'application/json' }, body: chatBody });
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('via_upstream');
    expect(envoy.stats.accessLog[0]!.details).toBe('via_upstream');
  });

  it('reset-before-request retries a reset that came before the request reached the upstream, whatever its reason', async () => {
    // The per-attempt processor holds request_headers past per_try_timeout on the first attempt:
    // a local reset (per try timeout) before any byte went upstream.
    let attempt = 0;
    const { envoy, openai, anthropic } = await shipped({
      hook: async (m) => {
        if (m.request === 'request_headers' && m.attributes?.['envoy.filters.http.ext_proc'] && attempt++ === 0) {
          await new Promise((r) => setTimeout(r, 400));
        }
        return undefined;
      },
      tweak: (d) => {
        const routes = hcmOf(d).route_config.virtual_hosts[0].routes;
        const p = routes.find((r: any) => r.name === 'chat_completions_chain').route.retry_policy;
        p.retry_on = 'reset-before-request';
        p.per_try_timeout = '0.15s';
      },
    });
    const res = await request(`${envoy.url}/v1/chat/completions`, { headers: { 'content-type': 'application/json' }, body: chatBody });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).from).toBe('anthropic');
    expect(openai.requests).toHaveLength(0);
    expect(anthropic.requests).toHaveLength(1);
  });

  it('skips a content-length set_header before checking its value when Envoy drops content-length', async () => {
    const up = await startUpstream((r, res) => json(res, 200, { len: r.body.length, te: r.headers['transfer-encoding'] ?? null }));
    const ep = await startScriptedExtProc(
      autoRespond((m) =>
        m.request === 'request_headers'
          ? { request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'content-length', raw_value: Buffer.from('not a number\r\n') } }] } } } }
          : undefined,
      ),
    );
    const envoy = await standinFor(ep, up.url, { extProc: { processing_mode: { request_header_mode: 'SEND', request_body_mode: 'STREAMED', response_header_mode: 'SKIP' } } });
    cleanup.push(() => envoy.close(), () => ep.close(), () => up.close());
    const res = await request(`${envoy.url}/x`, { body: 'hello' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ len: 5, te: 'chunked' });
  });

  it('refuses an HTTP/2 client with a clear message', async () => {
    const { envoy } = await shipped();
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(envoy.port, '127.0.0.1', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 505 /);
    expect(answer).toContain('HTTP/2 clients are not supported');
    expect(envoy.stats.errors.some((e) => e.includes('HTTP/2'))).toBe(true);
  });
});
