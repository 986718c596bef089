/**
 * What the ext_proc server receives from the stand-in, message by message (facts §2.1, §7):
 * one stream per request with :authority = cluster name, protocol_config only first,
 * metadata_context on every message, lower-case headers in raw_value with pseudo-headers,
 * content-length as received, BUFFERED bodies as one message, and the stream closed by
 * half-close + cancel.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Standin } from '../envoy-standin/standin.js';
import {
  attributesOf,
  autoRespond,
  bodyOf,
  eosOf,
  header,
  headersOf,
  json,
  metadataOf,
  request,
  standinFor,
  startScriptedExtProc,
  startUpstream,
  until,
  type FakeUpstream,
  type ScriptedExtProc,
} from './helpers.js';
import { jsonToStruct } from '../envoy-standin/proto.js';

const BUFFERED = {
  processing_mode: {
    request_header_mode: 'SEND',
    request_body_mode: 'BUFFERED',
    response_header_mode: 'SEND',
    response_body_mode: 'BUFFERED',
  },
};

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function setup(script: Parameters<typeof startScriptedExtProc>[0], upstreamHandler: Parameters<typeof startUpstream>[0], cfg: Parameters<typeof standinFor>[2] = {}) {
  const ep: ScriptedExtProc = await startScriptedExtProc(script);
  const up: FakeUpstream = await startUpstream(upstreamHandler);
  const envoy: Standin = await standinFor(ep, up.url, cfg);
  cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());
  return { ep, up, envoy };
}

describe('messages sent to the processor', () => {
  it('sends headers, one buffered body each way, protocol_config first, metadata on every message, then cancels the stream', async () => {
    const { ep, up, envoy } = await setup(
      autoRespond((m) => {
        if (m.request === 'request_headers') {
          return { request_headers: {}, dynamic_metadata: jsonToStruct({ ai_gateway: { tenant: 't1' } }) };
        }
        return undefined;
      }),
      (r, res) => json(res, 200, { echo: r.body.toString() }),
      {
        extProc: {
          ...BUFFERED,
          metadata_options: { forwarding_namespaces: { untyped: ['ai_gateway'] }, receiving_namespaces: { untyped: ['ai_gateway'] } },
        },
      },
    );
    const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'héllo' }] });
    const res = await request(`${envoy.url}/v1/chat/completions?x=1`, {
      headers: { 'content-type': 'application/json', 'X-Mixed-Case': 'Value' },
      body,
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ echo: body });
    expect(up.requests[0]!.body.toString()).toBe(body);

    expect(ep.streams).toHaveLength(1);
    const s = ep.streams[0]!;
    await until(() => s.cancelled);
    expect(s.authority).toBe('ext_proc');
    expect(s.kinds()).toEqual(['request_headers', 'request_body', 'response_headers', 'response_body']);

    const [rh, rb, sh, sb] = s.received as [any, any, any, any];
    // protocol_config only on the first message.
    expect(rh.protocol_config).toEqual({ request_body_mode: 'BUFFERED', response_body_mode: 'BUFFERED' });
    for (const m of [rb, sh, sb]) expect(m.protocol_config).toBeUndefined();
    // metadata_context on every message; what the server wrote comes back from then on.
    for (const m of s.received) expect(m.metadata_context).toBeDefined();
    expect(metadataOf(rh)).toEqual({});
    for (const m of [rb, sh, sb]) expect(metadataOf(m)).toEqual({ ai_gateway: { tenant: 't1' } });
    // No attributes configured → none sent.
    expect(attributesOf(rh)).toBeUndefined();

    // Headers: lower-case, raw_value only, pseudo-headers first, content-length as received.
    const names = headersOf(rh).map(([k]) => k);
    expect(names.slice(0, 4)).toEqual([':method', ':path', ':authority', ':scheme']);
    for (const h of rh.request_headers.headers.headers) {
      expect(h.key).toBe(h.key.toLowerCase());
      expect(h.value).toBeUndefined();
      expect(h.raw_value).toBeDefined();
    }
    expect(header(rh, ':method')).toBe('POST');
    expect(header(rh, ':path')).toBe('/v1/chat/completions?x=1');
    expect(header(rh, ':authority')).toBe(`127.0.0.1:${envoy.port}`);
    expect(header(rh, ':scheme')).toBe('http');
    expect(header(rh, 'x-mixed-case')).toBe('Value');
    expect(header(rh, 'content-length')).toBe(String(Buffer.byteLength(body)));
    expect(header(rh, 'x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(header(rh, 'x-forwarded-proto')).toBe('http');
    expect(header(rh, 'host')).toBeUndefined();
    expect(header(rh, 'connection')).toBeUndefined();
    expect(eosOf(rh)).toBe(false);

    // BUFFERED: the whole body in one message with end_of_stream.
    expect(bodyOf(rb).toString()).toBe(body);
    expect(eosOf(rb)).toBe(true);

    expect(header(sh, ':status')).toBe('200');
    expect(header(sh, 'content-length')).toBe(String(Buffer.byteLength(JSON.stringify({ echo: body }))));
    expect(header(sh, 'x-envoy-upstream-service-time')).toMatch(/^\d+$/);
    expect(JSON.parse(bodyOf(sb).toString())).toEqual({ echo: body });
    expect(eosOf(sb)).toBe(true);

    // The stream ends with half-close then cancel: the server sees CANCELLED.
    expect(s.cancelled).toBe(true);
    ep.assertNoScriptErrors();
  });

  it('marks end_of_stream on request headers when there is no body, and skips SKIP-mode messages', async () => {
    const { ep, envoy } = await setup(autoRespond(), (_r, res) => json(res, 200, { ok: true }), {
      extProc: { processing_mode: { request_header_mode: 'SEND', response_header_mode: 'SKIP' } },
    });
    const res = await request(`${envoy.url}/v1/models`);
    expect(res.status).toBe(200);
    const s = ep.streams[0]!;
    expect(s.kinds()).toEqual(['request_headers']);
    expect(eosOf(s.received[0]!)).toBe(true);
    // No body, no response processing: the stream is closed right after the headers response
    // (stream close optimisation), before the response completes.
    await until(() => s.cancelled);
  });

  it('closes the stream after the last expected response, before the upstream answers', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { ep, envoy } = await setup(
      autoRespond(),
      async (_r, res) => {
        await gate;
        json(res, 200, {});
      },
      { extProc: { processing_mode: { request_header_mode: 'SEND', response_header_mode: 'SKIP' } } },
    );
    const pending = request(`${envoy.url}/x`);
    await until(() => ep.streams[0]?.cancelled === true);
    release();
    expect((await pending).status).toBe(200);
  });

  it('sends the configured request attributes once, on the first request-path message', async () => {
    const { ep, envoy } = await setup(autoRespond(), (_r, res) => json(res, 200, {}), {
      extProc: {
        ...BUFFERED,
        request_attributes: ['request.path', 'request.method', "request.headers['x-tenant']", 'xds.route_name', 'xds.cluster_name', "request.headers['absent']"],
        response_attributes: ['response.code'],
      },
    });
    await request(`${envoy.url}/p?q=1`, { headers: { 'x-tenant': 'acme' }, body: 'x' });
    const s = ep.streams[0]!;
    const attrs = s.received.map(attributesOf);
    expect(attrs[0]).toEqual({
      'request.path': '/p?q=1',
      'request.method': 'POST',
      "request.headers['x-tenant']": 'acme',
      'xds.route_name': 'default',
      // no cluster chosen yet and a missing key: left out, as failed CEL evaluations are
    });
    expect(attrs[1]).toBeUndefined();
    expect(attrs[2]).toEqual({ 'response.code': 200 });
    expect(attrs[3]).toBeUndefined();
  });
});
