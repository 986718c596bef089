/**
 * Direct tests of the adapter's pure pieces: which processing modes to ask for (modes.ts), how
 * decisions become a ProcessingResponse (encode.ts), how streams of one request find each other
 * (exchangeLinks.ts).
 */
import { describe, expect, it } from 'vitest';
import { NO_PROTOCOL, StreamExchange } from '../../extproc/pipeline/exchange.js';
import { HeaderView } from '../../extproc/pipeline/headers.js';
import { PhaseOutput } from '../../extproc/pipeline/output.js';
import type { PipelineNeeds } from '../../extproc/pipeline/pipeline.js';
import { encodeResponse } from '../../extproc/server/encode.js';
import { ExchangeLinks } from '../../extproc/server/exchangeLinks.js';
import { requestHeadersOverride, responseHeadersOverride } from '../../extproc/server/modes.js';
import { createLogger } from '../../extproc/telemetry/logger.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const buffered = { requestBodyMode: 'BUFFERED', responseBodyMode: 'BUFFERED', sendBodyWithoutWaitingForHeaderResponse: false };
const needs = (n: Partial<PipelineNeeds>): PipelineNeeds => ({ requestBody: false, responseHeaders: false, responseBody: 'never', ...n });
const exchange = (headers: Record<string, string> = {}): StreamExchange => {
  const x = new StreamExchange(createLogger('error', () => undefined), 1024);
  x.requestHeaders = new HeaderView(Object.entries({ 'x-request-id': 'r1', ...headers }).map(([key, value]) => ({ key, value })));
  return x;
};

describe('modes', () => {
  it('pass-through asks for nothing more', () => {
    const modes = { requestBodyMode: 'BUFFERED', responseBodyMode: 'BUFFERED' };
    expect(requestHeadersOverride(needs({}), buffered, modes)).toEqual({ request_body_mode: 'NONE', response_body_mode: 'NONE', response_header_mode: 'SKIP' });
    expect(modes).toEqual({ requestBodyMode: 'NONE', responseBodyMode: 'NONE' });
  });

  it('no override when Envoy already sends exactly what is needed', () => {
    const modes = { requestBodyMode: 'BUFFERED', responseBodyMode: 'BUFFERED' };
    expect(requestHeadersOverride(needs({ requestBody: true, responseHeaders: true, responseBody: 'always' }), buffered, modes)).toBeUndefined();
  });

  it('the attempt filter turns response headers on explicitly when its stages read them', () => {
    const modes = { requestBodyMode: 'NONE', responseBodyMode: 'NONE' };
    const attemptProtocol = { ...NO_PROTOCOL };
    expect(requestHeadersOverride(needs({ responseHeaders: true, responseBody: 'always' }), attemptProtocol, modes, 'attempt')).toEqual({
      request_body_mode: 'NONE',
      response_body_mode: 'NONE',
      response_header_mode: 'SEND',
    });
  });

  it('on the attempt filter the response-headers override repeats SEND (DEFAULT would mean its configured SKIP)', () => {
    const x = exchange();
    x.protocol = { ...NO_PROTOCOL };
    x.responseHeaders = new HeaderView([{ key: 'content-type', value: 'application/json' }]);
    expect(responseHeadersOverride(needs({ responseHeaders: true, responseBody: 'always' }), x, { requestBodyMode: 'NONE', responseBodyMode: 'NONE' }, 'attempt')).toEqual({
      request_body_mode: 'NONE',
      response_body_mode: 'BUFFERED',
      response_header_mode: 'SEND',
    });
  });

  it('no override at all with send_body_without_waiting_for_header_response or FULL_DUPLEX_STREAMED', () => {
    const modes = { requestBodyMode: 'BUFFERED', responseBodyMode: 'BUFFERED' };
    expect(requestHeadersOverride(needs({}), { ...buffered, sendBodyWithoutWaitingForHeaderResponse: true }, modes)).toBeUndefined();
    expect(requestHeadersOverride(needs({}), { ...buffered, responseBodyMode: 'FULL_DUPLEX_STREAMED' }, modes)).toBeUndefined();
  });

  it('an SSE answer is STREAMED, JSON stays BUFFERED, and an unread body is NONE', () => {
    const x = exchange();
    x.protocol = buffered;
    x.responseHeaders = new HeaderView([{ key: 'content-type', value: 'text/event-stream; charset=utf-8' }]);
    const modes = { requestBodyMode: 'NONE', responseBodyMode: 'BUFFERED' };
    expect(responseHeadersOverride(needs({ responseBody: 'always' }), x, modes)).toEqual({ request_body_mode: 'NONE', response_body_mode: 'STREAMED' });
    x.responseHeaders = new HeaderView([{ key: 'content-type', value: 'application/json' }]);
    expect(responseHeadersOverride(needs({ responseBody: 'always' }), x, { requestBodyMode: 'NONE', responseBodyMode: 'BUFFERED' })).toBeUndefined();
    expect(responseHeadersOverride(needs({ responseBody: 'on-demand' }), x, { requestBodyMode: 'NONE', responseBodyMode: 'BUFFERED' })).toEqual({ request_body_mode: 'NONE', response_body_mode: 'NONE' });
  });
});

describe('encode', () => {
  it('header values only in raw_value; clear_route_cache only with a header mutation', () => {
    const out = new PhaseOutput();
    out.clearRouteCache = true;
    expect(encodeResponse('request_body', out)).toEqual({ request_body: {} });
    out.setHeader('X-Gateway-Cluster', 'openai');
    const r = encodeResponse('request_body', out) as { request_body: { response: Record<string, unknown> } };
    expect(r.request_body.response).toEqual({
      header_mutation: { set_headers: [{ header: { key: 'x-gateway-cluster', raw_value: Buffer.from('openai') } }], remove_headers: [] },
      clear_route_cache: true,
    });
  });

  it('a body in a headers answer is CONTINUE_AND_REPLACE; in a body answer it is a plain mutation', () => {
    const out = new PhaseOutput();
    out.replaceBody('{}');
    expect(encodeResponse('request_headers', out)).toEqual({ request_headers: { response: { body_mutation: { body: Buffer.from('{}') }, status: 'CONTINUE_AND_REPLACE' } } });
    expect(encodeResponse('request_body', out)).toEqual({ request_body: { response: { body_mutation: { body: Buffer.from('{}') } } } });
  });

  it('mode_override only on header answers; metadata as Struct per namespace; immediate answers carry status, headers, details', () => {
    const out = new PhaseOutput();
    out.setMetadata('ai_gateway', 'tokens', 12);
    const mode = { request_body_mode: 'NONE', response_body_mode: 'NONE' };
    expect(encodeResponse('response_body', out, mode)).not.toHaveProperty('mode_override');
    expect(encodeResponse('request_headers', out, mode)).toMatchObject({ mode_override: mode, dynamic_metadata: { fields: { ai_gateway: { structValue: { fields: { tokens: { numberValue: 12 } } } } } } });
    out.respond({ status: 429, headers: { 'Retry-After': '3' }, body: 'x', details: 'limited' });
    expect(encodeResponse('request_body', out)).toMatchObject({
      immediate_response: { status: { code: 429 }, body: Buffer.from('x'), details: 'limited', headers: { set_headers: [{ header: { key: 'retry-after', raw_value: Buffer.from('3') } }] } },
    });
  });
});

describe('exchangeLinks', () => {
  it('an observer acquires the main exchange once; finish runs after both released', () => {
    const links = new ExchangeLinks(1000);
    const x = exchange();
    let finished = 0;
    const releaseMain = links.register(x, () => finished++);
    const obs = links.acquire('r1');
    expect(obs?.x).toBe(x);
    expect(links.acquire('r1')).toBeUndefined(); // one observer per request
    releaseMain();
    expect(finished).toBe(0);
    obs!.release();
    expect(finished).toBe(1);
    expect(links.size).toBe(0);
  });

  it('a released exchange lingers for its observer, then finishes on its own', async () => {
    const links = new ExchangeLinks(20);
    let finished = 0;
    links.register(exchange(), () => finished++)();
    expect(finished).toBe(0);
    await sleep(40);
    expect(finished).toBe(1);
  });

  it('a reused request id never links two requests', () => {
    const links = new ExchangeLinks(0);
    let finished = 0;
    links.register(exchange(), () => undefined);
    const second = links.register(exchange(), () => finished++);
    second();
    expect(finished).toBe(1);
  });

  it('router views: published while in flight, withdrawn after the linger, never shared by a reused id', async () => {
    const links = new ExchangeLinks(20);
    const x = exchange();
    expect(links.publishRouter(x)).toBe(true);
    expect(links.routerView('r1')?.requestId).toBe('r1');
    const reused = exchange();
    expect(links.publishRouter(reused)).toBe(false); // same id: ignored
    links.withdrawRouter(reused); // withdraws nothing of the first
    expect(links.routerView('r1')).toBeDefined();
    links.withdrawRouter(x);
    expect(links.routerView('r1')).toBeDefined(); // lingers for attempts that open after Envoy closed the router stream
    await sleep(40);
    expect(links.routerView('r1')).toBeUndefined();
  });

  it('a router view whose stream saw the response headers is withdrawn at once (every attempt has begun)', () => {
    const links = new ExchangeLinks(60_000);
    const x = exchange();
    links.publishRouter(x);
    x.responseHeaders = new HeaderView([{ key: ':status', value: '200' }]);
    links.withdrawRouter(x);
    expect(links.routerView('r1')).toBeUndefined();
  });
});
