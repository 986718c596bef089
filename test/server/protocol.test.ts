/**
 * The protocol adapter as Envoy's ext_proc filter uses it (envoy-ext-proc-facts.md §1–2, §7):
 * one answer per message of the matching kind and in order, mode overrides, mutation encoding,
 * immediate responses, observability mode, and stream ends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import type { StreamExchange } from '../../extproc/pipeline/exchange.js';
import { connect, requestHeaders, setHeadersOf, type TestStream } from '../helpers/extProcClient.js';
import { startTestGateway, testStage, type TestGateway } from '../helpers/gateway.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Routes by header, rewrites the body after an await, uppercases each response chunk. */
const mutateStage: StageFactory<never> = testStage('test-mutate', {
  requestHeaders(x, out) {
    out.setHeader('x-gateway-cluster', 'openai');
    out.clearRouteCache = true;
    out.setMetadata('ai_gateway', 'tenant', x.requestHeaders?.get('x-tenant') ?? 'none');
  },
  async requestBody(_x, out, body) {
    await sleep(20);
    out.replaceBody(Buffer.from(body.bytes.toString().replace('hello', 'HELLO')));
    out.setHeader('content-length', String(body.bytes.length));
  },
  responseBody(_x, out, chunk) {
    out.replaceBody(chunk.bytes.toString().toUpperCase());
  },
});

const respondStage: StageFactory<never> = {
  name: 'test-respond',
  options: z.object({ status: z.number() }).strict() as never,
  create: (options: { status: number }) => ({
    name: 'test-respond',
    failure: 'open',
    requestBody(_x, out) {
      out.respond({ status: options.status, headers: { 'retry-after': '7', 'content-type': 'application/json' }, body: '{"error":{"message":"slow down"}}', details: 'rate_limited' });
    },
  }),
};

let gw: TestGateway | undefined;
let client: ReturnType<typeof connect> | undefined;
afterEach(async () => {
  client?.close();
  await gw?.close(500);
  gw = undefined;
  client = undefined;
});

async function open(config: Record<string, unknown> = {}, stages: StageFactory<never>[] = []): Promise<TestStream> {
  gw = await startTestGateway(config, stages);
  client = connect(gw.port);
  return client.open();
}

describe('pass-through (no stages)', () => {
  it('asks Envoy, through mode_override on the first answer, to send nothing more', async () => {
    const s = await open();
    s.send(requestHeaders());
    const r = await s.next();
    expect(r.response).toBe('request_headers');
    expect(r.request_headers.response).toBeUndefined(); // plain CONTINUE, no mutation
    expect(r.mode_override).toEqual({ request_body_mode: 'NONE', response_body_mode: 'NONE', response_header_mode: 'SKIP' });
    s.end();
    expect((await s.status).code).toBe(0);
  });

  it('answers every message that still arrives (Envoy without allow_mode_override) with a CONTINUE of the matching kind', async () => {
    const s = await open();
    s.send(requestHeaders());
    s.send({ request_body: { body: Buffer.from('{"model":"m"}'), end_of_stream: true } });
    s.send({ response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }] } } });
    s.send({ response_body: { body: Buffer.from('{}'), end_of_stream: true } });
    s.send({ response_trailers: { trailers: { headers: [] } } });
    const kinds = [];
    for (let i = 0; i < 5; i++) kinds.push((await s.next()).response);
    expect(kinds).toEqual(['request_headers', 'request_body', 'response_headers', 'response_body', 'response_trailers']);
  });
});

describe('with stages', () => {
  it('keeps request headers on, asks for a BUFFERED request body, and encodes header mutations in raw_value only', async () => {
    const s = await open({ pipeline: { stages: ['test-mutate'] } }, [mutateStage]);
    s.send(requestHeaders({ 'x-tenant': 'acme' }));
    const r = await s.next();
    expect(r.mode_override).toBeUndefined(); // BUFFERED/BUFFERED already, response headers needed
    const common = r.request_headers.response;
    expect(setHeadersOf(common)).toEqual({ 'x-gateway-cluster': 'openai' });
    for (const h of common.header_mutation.set_headers) expect(h.header.value).toBeUndefined();
    expect(common.clear_route_cache).toBe(true);
    expect(r.dynamic_metadata.fields.ai_gateway.structValue.fields.tenant.stringValue).toBe('acme');
  });

  it('keeps answers in order when a stage awaits I/O while later messages are pipelined', async () => {
    const s = await open({ pipeline: { stages: ['test-mutate'] } }, [mutateStage]);
    s.send(requestHeaders());
    await s.next();
    // The body answer waits 20 ms; response-side messages arrive meanwhile (interleaving, §2.1).
    s.send({ request_body: { body: Buffer.from('{"say":"hello"}'), end_of_stream: true } });
    s.send({ response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }, { key: 'content-type', raw_value: Buffer.from('text/event-stream') }, { key: 'content-length', raw_value: Buffer.from('99') }] } } });
    for (const part of ['data: a', 'b\n\n', '']) s.send({ response_body: { body: Buffer.from(part), end_of_stream: part === '' } });
    const body = await s.next();
    expect(body.response).toBe('request_body');
    expect(body.request_body.response.body_mutation.body.toString()).toBe('{"say":"HELLO"}');
    expect(setHeadersOf(body.request_body.response)).toEqual({ 'content-length': '15' });
    const headers = await s.next();
    expect(headers.response).toBe('response_headers');
    // SSE answer: switch the response body to STREAMED and drop content-length (§2.3, §2.5).
    expect(headers.mode_override).toEqual({ request_body_mode: 'BUFFERED', response_body_mode: 'STREAMED' });
    expect(headers.response_headers.response.header_mutation.remove_headers).toEqual(['content-length']);
    const chunks = [];
    for (let i = 0; i < 3; i++) {
      const c = await s.next();
      expect(c.response).toBe('response_body');
      chunks.push(c.response_body.response?.body_mutation?.body?.toString() ?? '');
    }
    expect(chunks).toEqual(['DATA: A', 'B\n\n', '']);
  });

  it('with a STREAMED request body (override not honoured): stages see the whole body once, and mutations Envoy cannot apply are dropped', async () => {
    const s = await open({ pipeline: { stages: ['test-mutate'] } }, [mutateStage]);
    s.send(requestHeaders({}, { protocol_config: { request_body_mode: 'STREAMED', response_body_mode: 'NONE' } }));
    expect((await s.next()).mode_override).toMatchObject({ request_body_mode: 'BUFFERED' });
    s.send({ request_body: { body: Buffer.from('{"say":"hel'), end_of_stream: false } }); // Envoy kept STREAMED
    s.send({ request_body: { body: Buffer.from('lo"}'), end_of_stream: true } }); // "hello" only exists joined
    expect((await s.next()).request_body.response).toBeUndefined();
    const last = await s.next();
    expect(last.request_body.response).toBeUndefined(); // body replacement and header dropped
    expect(gw!.logs.some((l) => String(l['msg']).startsWith('request body arrived STREAMED'))).toBe(true);
  });

  it('lets a slow stage ask Envoy for more time: override_message_timeout first, alone, once per message', async () => {
    const granted: boolean[] = [];
    const slow: StageFactory<never> = testStage('test-more-time', {
      async requestBody(x) {
        granted.push(x.requestMoreTime(2500), x.requestMoreTime(9000));
        await sleep(30);
      },
    });
    const s = await open({ pipeline: { stages: ['test-more-time'] } }, [slow]);
    s.send(requestHeaders());
    await s.next();
    s.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
    const extend = await s.next();
    expect(extend.response).toBeUndefined(); // "the data plane ignores other fields in the response"
    expect(extend.override_message_timeout).toEqual({ seconds: '2', nanos: 500_000_000 });
    expect((await s.next()).response).toBe('request_body');
    expect(granted).toEqual([true, false]);
  });

  it('answers with an immediate response and then stays silent', async () => {
    const s = await open({ pipeline: { stages: [{ name: 'test-respond', status: 429 }] } }, [respondStage]);
    s.send(requestHeaders());
    await s.next();
    s.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
    const r = await s.next();
    expect(r.response).toBe('immediate_response');
    expect(r.immediate_response.status.code).toBe('TooManyRequests');
    expect(r.immediate_response.details).toBe('rate_limited');
    expect(r.immediate_response.body.toString()).toContain('slow down');
    expect(setHeadersOf({ header_mutation: r.immediate_response.headers })).toEqual({ 'retry-after': '7', 'content-type': 'application/json' });
    s.send({ response_headers: { headers: { headers: [] } } });
    expect(await s.silentFor(100)).toBe(true);
  });

  it('sends no answers in observability mode', async () => {
    const s = await open({ pipeline: { stages: ['test-mutate'] } }, [mutateStage]);
    s.send(requestHeaders({}, { observability_mode: true }));
    s.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true }, observability_mode: true });
    expect(await s.silentFor(150)).toBe(true);
    s.end();
    expect((await s.status).code).toBe(0);
  });

  it('reads protocol_config, attributes and metadata_context from the first messages', async () => {
    const seen: Record<string, unknown>[] = [];
    const stage: StageFactory<never> = testStage('test-context', {
      requestHeaders: (x) => void seen.push({ protocol: (x as StreamExchange).protocol, attributes: { ...x.attributes }, metadata: x.metadata }),
      responseHeaders: (x) => void seen.push({ attributes: { ...x.attributes }, status: x.responseStatus }),
    });
    const str = (v: string) => ({ stringValue: v });
    const s = await open({ pipeline: { stages: ['test-context'] } }, [stage]);
    s.send(
      requestHeaders(
        {},
        {
          attributes: { 'envoy.filters.http.ext_proc': { fields: { 'xds.route_name': str('chat'), 'source.address': str('10.0.0.7:5555') } } },
          metadata_context: { filter_metadata: { ai_gateway: { fields: { tier: str('gold'), n: { numberValue: 3 } } } } },
        },
      ),
    );
    await s.next();
    s.send({
      response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('201') }] }, end_of_stream: true },
      attributes: { 'envoy.filters.http.ext_proc': { fields: { 'response.code': { numberValue: 201 } } } },
    });
    await s.next();
    expect(seen[0]).toEqual({
      protocol: { requestBodyMode: 'BUFFERED', responseBodyMode: 'BUFFERED', sendBodyWithoutWaitingForHeaderResponse: false },
      attributes: { 'xds.route_name': 'chat', 'source.address': '10.0.0.7:5555' },
      metadata: { ai_gateway: { tier: 'gold', n: 3 } },
    });
    expect(seen[1]).toEqual({ attributes: { 'xds.route_name': 'chat', 'source.address': '10.0.0.7:5555', 'response.code': 201 }, status: 201 });
  });

  it('runs router stages only on the router filter: a per-attempt upstream stream (x-gateway-filter: attempt) asks for nothing', async () => {
    const s = await open({ pipeline: { stages: ['test-mutate'] } }, [mutateStage]);
    const attempt = client!.open({ 'x-gateway-filter': 'attempt' });
    attempt.send({ ...requestHeaders(), protocol_config: { request_body_mode: 'NONE', response_body_mode: 'NONE' } });
    const r = await attempt.next();
    expect(r.request_headers.response).toBeUndefined(); // test-mutate did not run
    expect(r.mode_override).toEqual({ request_body_mode: 'NONE', response_body_mode: 'NONE', response_header_mode: 'SKIP' });
    s.send(requestHeaders());
    expect(setHeadersOf((await s.next()).request_headers.response)).toEqual({ 'x-gateway-cluster': 'openai' });
  });

  it("on-demand response bodies: asked for only on exchanges where an earlier phase wanted them", async () => {
    const seen: string[] = [];
    const stage: StageFactory<never> = testStage('test-on-demand', {
      responseBodyUse: 'on-demand',
      requestHeaders: (x) => (x.requestHeaders?.get('x-want-body') === 'yes' ? x.wantResponseBody() : undefined),
      responseBody: (_x, _out, chunk) => void seen.push(chunk.bytes.toString()),
    });
    const s = await open({ pipeline: { stages: ['test-on-demand'] } }, [stage]);
    const jsonHeaders = { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }, { key: 'content-type', raw_value: Buffer.from('application/json') }] } };
    s.send(requestHeaders({ 'x-want-body': 'no' }));
    await s.next();
    s.send({ response_headers: jsonHeaders });
    expect((await s.next()).mode_override).toEqual({ request_body_mode: 'NONE', response_body_mode: 'NONE' });

    const wanted = client!.open();
    wanted.send(requestHeaders({ 'x-want-body': 'yes' }));
    await wanted.next();
    wanted.send({ response_headers: jsonHeaders });
    expect((await wanted.next()).mode_override).toBeUndefined(); // BUFFERED, as configured
    wanted.send({ response_body: { body: Buffer.from('{"ok":true}'), end_of_stream: true } });
    await wanted.next();
    expect(seen).toEqual(['{"ok":true}']);
  });

  it('does not set clear_route_cache without a header mutation (Envoy would ignore it)', async () => {
    const stage: StageFactory<never> = testStage('test-refresh-only', {
      requestHeaders: (_x, out) => void (out.clearRouteCache = true),
    });
    const s = await open({ pipeline: { stages: ['test-refresh-only'] } }, [stage]);
    s.send(requestHeaders());
    const r = await s.next();
    expect(r.request_headers.response?.clear_route_cache).toBeUndefined();
  });
});

describe('bad input and stream ends', () => {
  it('closes the stream cleanly (Envoy continues without us) on bytes that are not a ProcessingRequest, and keeps serving', async () => {
    const s = await open();
    s.send(Buffer.from([0xff, 0xff, 0xff, 0x01, 0x02]));
    const status = await s.status;
    expect(status.code).toBe(0);
    expect(gw!.logs.some((l) => l['msg'] === 'malformed ProcessingRequest; closing stream so Envoy continues without the gateway')).toBe(true);
    const s2 = client!.open();
    s2.send(requestHeaders());
    expect((await s2.next()).response).toBe('request_headers');
  });

  it('closes cleanly on a message with no request kind', async () => {
    const s = await open();
    s.send({ protocol_config: { request_body_mode: 'BUFFERED' } });
    expect((await s.status).code).toBe(0);
  });

  it('answers an out-of-order message with a CONTINUE of its kind and logs one line with the request id', async () => {
    const s = await open({ pipeline: { stages: ['parse-request'] } });
    s.send(requestHeaders({ 'x-request-id': 'req-order' }));
    await s.next();
    s.send(requestHeaders({ 'x-request-id': 'req-order' })); // headers twice
    const r = await s.next();
    expect(r.response).toBe('request_headers');
    expect(r.request_headers.response).toBeUndefined();
    const lines = gw!.logs.filter((l) => l['msg'] === 'out-of-order ProcessingRequest; continuing unchanged');
    expect(lines).toHaveLength(1);
    expect(lines[0]!['request_id']).toBe('req-order');
  });

  it('survives a client that vanishes mid-stream, runs finish hooks, and leaks no stream', async () => {
    let finished = 0;
    const stage: StageFactory<never> = testStage('test-finish', {
      requestBody: () => sleep(50), finish: () => void finished++,
    });
    const s = await open({ pipeline: { stages: ['test-finish'] } }, [stage]);
    s.send(requestHeaders());
    await s.next();
    s.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
    s.cancel(); // gone while the stage is still working
    await sleep(120);
    expect(finished).toBe(1);
    expect(gw!.server.activeStreams).toBe(0);
    const s2 = client!.open();
    s2.send(requestHeaders());
    expect((await s2.next()).response).toBe('request_headers');
  });

  it('ends with half-close then cancel, as Envoy does, without errors', async () => {
    const s = await open({ pipeline: { stages: ['parse-request'] } });
    s.send(requestHeaders());
    await s.next();
    s.send({ request_body: { body: Buffer.from('{"model":"gpt-4o"}'), end_of_stream: true } });
    await s.next();
    s.end();
    s.cancel();
    await s.status;
    await sleep(50);
    expect(gw!.server.activeStreams).toBe(0);
    expect(gw!.logs.filter((l) => l['level'] === 'error')).toEqual([]);
  });

  it('accepts bodies over grpc-js 4 MiB default receive limit (Envoy buffers up to its own limit)', async () => {
    const s = await open({ pipeline: { stages: ['parse-request'] } });
    s.send(requestHeaders());
    await s.next();
    const big = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(6 * 1024 * 1024) }] }));
    s.send({ request_body: { body: big, end_of_stream: true } });
    const r = await s.next(5000);
    expect(r.response).toBe('request_body');
  });

  it("accepts Envoy's keepalive pings (http2 connection_keepalive) on a long stream", async () => {
    gw = await startTestGateway();
    client = connect(gw.port, { 'grpc.keepalive_time_ms': 100, 'grpc.keepalive_timeout_ms': 1000, 'grpc.keepalive_permit_without_calls': 1 });
    const s = client.open();
    s.send(requestHeaders());
    await s.next();
    await sleep(600); // several pings
    s.send({ response_headers: { headers: { headers: [] } } });
    expect((await s.next()).response).toBe('response_headers');
  });
});
