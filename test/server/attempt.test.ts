/**
 * Per-attempt stages and their request (issue 6 point 1), message by message over gRPC: what a
 * router stage carries reaches an attempt stage on another replica through Envoy's forwarded
 * dynamic metadata; on the same replica the attempt also gets a read-only view of the router
 * exchange; a body replaced in a headers answer goes out as CONTINUE_AND_REPLACE; attempt stages
 * that read the response get it. Plus finish outcomes and shutdown waiting for finish hooks.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { carried } from '../../extproc/pipeline/carry.js';
import { slot, type Outcome } from '../../extproc/pipeline/exchange.js';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { connect, headerMap, requestHeaders, setHeadersOf } from '../helpers/extProcClient.js';
import { startTestGateway, testStage, type TestGateway } from '../helpers/gateway.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const routeCarry = carried<{ model: string; step: number }>('route');
const caller = slot<string>('caller');

const gateways: TestGateway[] = [];
const clients: ReturnType<typeof connect>[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const g of gateways.splice(0)) await g.close(300);
});

async function gateway(stages: string[], factories: StageFactory<never>[], pipeline: Record<string, unknown> = {}): Promise<{ gw: TestGateway; client: ReturnType<typeof connect> }> {
  const gw = await startTestGateway({ pipeline: { stages, ...pipeline } }, factories);
  const client = connect(gw.port);
  gateways.push(gw);
  clients.push(client);
  return { gw, client };
}

const chooseRoute: StageFactory<never> = testStage('test-route', {
  requestBody(x, out) {
    x.set(caller, 'shop');
    x.editRequest((json) => ({ ...(json as object), model: 'claude-opus-4-20250514' }));
    out.carry(routeCarry, { model: 'claude-opus-4', step: 0 });
  },
});

const seenByAttempt: Record<string, unknown>[] = [];
const attemptReader: StageFactory<never> = testStage('test-attempt', {
  filter: 'attempt',
  requestHeaders(x, out) {
    seenByAttempt.push({
      carried: x.carried(routeCarry),
      routerCaller: x.router?.get(caller),
      routerModel: (x.router?.requestJson() as { model?: string } | undefined)?.model,
      provider: x.upstream?.hostMetadata['provider'],
      cluster: x.upstream?.clusterName,
    });
    out.setHeader('x-served-model', x.carried(routeCarry)?.model ?? 'unknown');
  },
});

/** The attempt stream as envoy.yaml's upstream filter opens it: tagged, with attributes and forwarded metadata. */
function attemptHeaders(requestId: string, forwarded: Record<string, unknown> | undefined): Record<string, unknown> {
  const msg = requestHeaders({ 'x-request-id': requestId }, {
    protocol_config: { request_body_mode: 'NONE', response_body_mode: 'NONE' },
    attributes: {
      'envoy.filters.http.ext_proc': {
        fields: {
          "xds.upstream_host_metadata.filter_metadata['ai_gateway']['provider']": { stringValue: 'anthropic' },
          'xds.cluster_name': { stringValue: 'llm_chain' },
        },
      },
    },
  });
  if (forwarded) msg['metadata_context'] = { filter_metadata: { ai_gateway: forwarded } };
  return msg;
}

describe('attempt stages reach their request', () => {
  it('router stream on one replica, attempt stream on another: the carried value arrives through forwarded metadata', async () => {
    seenByAttempt.length = 0;
    const a = await gateway(['test-route', 'test-attempt'], [chooseRoute, attemptReader]);
    const b = await gateway(['test-route', 'test-attempt'], [chooseRoute, attemptReader]);

    const router = a.client.open();
    router.send(requestHeaders({ 'x-request-id': 'req-x' }));
    await router.next();
    router.send({ request_body: { body: Buffer.from('{"model":"smart","messages":[]}'), end_of_stream: true } });
    const bodyAnswer = await router.next();
    // What Envoy merges into the request's StreamInfo (receiving_namespaces: ai_gateway)…
    const md = bodyAnswer.dynamic_metadata.fields.ai_gateway.structValue.fields;
    expect(md.carry_route.structValue.fields.model.stringValue).toBe('claude-opus-4');
    const forwarded = { fields: md };

    // …and forwards to the upstream filter (forwarding_namespaces: ai_gateway), here on replica B.
    const attempt = b.client.open({ 'x-gateway-filter': 'attempt' });
    attempt.send(attemptHeaders('req-x', forwarded));
    const answer = await attempt.next();
    expect(setHeadersOf(answer.request_headers.response)['x-served-model']).toBe('claude-opus-4');
    expect(seenByAttempt).toEqual([{ carried: { model: 'claude-opus-4', step: 0 }, routerCaller: undefined, routerModel: undefined, provider: 'anthropic', cluster: 'llm_chain' }]);
  });

  it('on the same replica the attempt also reads the router exchange: its slots and its edited request', async () => {
    seenByAttempt.length = 0;
    const a = await gateway(['test-route', 'test-attempt'], [chooseRoute, attemptReader]);
    const router = a.client.open();
    router.send(requestHeaders({ 'x-request-id': 'req-same' }));
    await router.next();
    router.send({ request_body: { body: Buffer.from('{"model":"smart"}'), end_of_stream: true } });
    await router.next();
    router.end(); // Envoy closes the router stream before the attempt starts (nothing more expected)
    await router.status;

    const attempt = a.client.open({ 'x-gateway-filter': 'attempt' });
    attempt.send(attemptHeaders('req-same', undefined));
    await attempt.next();
    expect(seenByAttempt[0]).toMatchObject({ routerCaller: 'shop', routerModel: 'claude-opus-4-20250514', carried: undefined });
  });

  it('an attempt stage that replaces the body in the headers answer sends CONTINUE_AND_REPLACE and the length for envoy.yaml to restore', async () => {
    const replace: StageFactory<never> = testStage('test-replace', {
      filter: 'attempt',
      requestHeaders: (_x, out) => {
        out.replaceBody('{"model":"claude-opus-4-20250514","max_tokens":1024}');
        out.setHeader(':path', '/v1/messages');
      },
    });
    const a = await gateway(['test-replace'], [replace]);
    const attempt = a.client.open({ 'x-gateway-filter': 'attempt' });
    attempt.send(attemptHeaders('req-r', undefined));
    const answer = await attempt.next();
    expect(answer.request_headers.response.status).toBe('CONTINUE_AND_REPLACE');
    expect(Buffer.from(answer.request_headers.response.body_mutation.body).toString()).toBe('{"model":"claude-opus-4-20250514","max_tokens":1024}');
    expect(answer.dynamic_metadata.fields.ai_gateway.structValue.fields.content_length.stringValue).toBe('52');
  });

  it('attempt stages that read the response turn response headers on (SEND) and get a STREAMED body for SSE', async () => {
    const chunks: string[] = [];
    const translate: StageFactory<never> = testStage('test-translate', {
      filter: 'attempt',
      responseHeaders: () => undefined,
      responseBody: (_x, out, chunk) => {
        chunks.push(chunk.bytes.toString());
        out.replaceBody(chunk.bytes.toString().replace('anthropic', 'openai'));
      },
    });
    const a = await gateway(['test-translate'], [translate]);
    const attempt = a.client.open({ 'x-gateway-filter': 'attempt' });
    attempt.send(attemptHeaders('req-t', undefined));
    const first = await attempt.next();
    expect(first.mode_override).toMatchObject({ response_header_mode: 'SEND' });
    attempt.send({ response_headers: { headers: headerMap({ ':status': '200', 'content-type': 'text/event-stream', 'content-length': '10' }) } });
    const headersAnswer = await attempt.next();
    expect(headersAnswer.mode_override).toMatchObject({ response_body_mode: 'STREAMED' });
    attempt.send({ response_body: { body: Buffer.from('data: anthropic\n\n') } });
    const chunkAnswer = await attempt.next();
    expect(Buffer.from(chunkAnswer.response_body.response.body_mutation.body).toString()).toBe('data: openai\n\n');
    expect(chunks).toEqual(['data: anthropic\n\n']);
  });
});

describe('response body on demand', () => {
  it('a responseHeaders handler that asks for the body gets it (the override is computed after the stages ran)', async () => {
    const chunks: string[] = [];
    const lateAsker: StageFactory<never> = testStage('test-late', {
      responseBodyUse: 'on-demand',
      responseHeaders: (x) => {
        if (x.responseStatus === 200) x.wantResponseBody();
      },
      responseBody: (_x, _out, chunk) => void chunks.push(chunk.bytes.toString()),
    });
    const a = await gateway(['test-late'], [lateAsker]);
    const s = a.client.open();
    s.send(requestHeaders({ 'x-request-id': 'req-late' }));
    await s.next();
    s.send({ response_headers: { headers: headerMap({ ':status': '200', 'content-type': 'application/json' }) } });
    const answer = await s.next();
    expect(answer.mode_override).toBeUndefined(); // BUFFERED as configured: the body will come
    s.send({ response_body: { body: Buffer.from('{"ok":true}'), end_of_stream: true } });
    await s.next();
    expect(chunks).toEqual(['{"ok":true}']);
  });
});

describe('finish outcomes over gRPC', () => {
  it('a stream that ends after the request phases with no response (Envoy local reply) finishes once as no-response', async () => {
    const outcomes: Outcome[] = [];
    const watcher: StageFactory<never> = testStage('test-watch', { responseHeaders: () => undefined, finish: (_x, o) => void outcomes.push(o) });
    const a = await gateway(['test-watch'], [watcher]);
    const s = a.client.open();
    s.send(requestHeaders({ 'x-request-id': 'req-nr' }));
    await s.next();
    s.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
    await s.next();
    s.end();
    s.cancel();
    for (let i = 0; i < 50 && outcomes.length === 0; i++) await sleep(10);
    await sleep(30);
    expect(outcomes).toEqual([{ kind: 'no-response', status: undefined, responseComplete: false }]);
  });

  it('shutdown waits for a slow finish hook of a stream that already ended', async () => {
    let finished = false;
    const slow: StageFactory<never> = testStage('test-slow-finish', {
      requestBody: () => undefined,
      finish: async () => {
        await sleep(300);
        finished = true;
      },
    });
    const a = await gateway(['test-slow-finish'], [slow]);
    const s = a.client.open();
    s.send(requestHeaders({ 'x-request-id': 'req-sf' }));
    await s.next();
    s.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
    await s.next();
    s.end();
    await s.status;
    expect(a.gw.server.pendingFinishes).toBe(1);
    await a.gw.close(2000);
    gateways.splice(gateways.indexOf(a.gw), 1);
    expect(finished).toBe(true);
  });
});
