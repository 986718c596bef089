/**
 * A stage that only observes a streamed answer adds no round trip per chunk: with
 * `pipeline.streamObserver`, the main stream asks Envoy for no response body and the chunks
 * arrive on Envoy's second, observability-mode filter (send-and-go), linked by x-request-id.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { slot } from '../../extproc/pipeline/exchange.js';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { connect, requestHeaders } from '../helpers/extProcClient.js';
import { startTestGateway, testStage, type TestGateway } from '../helpers/gateway.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tenant = slot<string>('tenant');
const seen: { tenant: string | undefined; text: string; finished: number } = { tenant: undefined, text: '', finished: 0 };

const tagTenant: StageFactory<never> = testStage('test-tenant', {
  requestBody: (x) => x.set(tenant, 'acme'),
});
const countChunks: StageFactory<never> = testStage('test-observe', {
  responseBodyAccess: 'observe',
  responseBody(x, _out, chunk) {
    seen.tenant = x.get(tenant);
    seen.text += chunk.bytes.toString();
  },
  finish() {
    seen.finished++;
  },
});

let gw: TestGateway | undefined;
let client: ReturnType<typeof connect> | undefined;
afterEach(async () => {
  client?.close();
  await gw?.close(200);
  seen.tenant = undefined;
  seen.text = '';
  seen.finished = 0;
});

const sse = { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }, { key: 'content-type', raw_value: Buffer.from('text/event-stream') }] } };

describe('stream observers', () => {
  it('with streamObserver: the main stream skips response body and headers; observers read the observability stream with the main exchange', async () => {
    gw = await startTestGateway({ pipeline: { streamObserver: true, stages: ['test-tenant', 'test-observe'] } }, [tagTenant, countChunks]);
    client = connect(gw.port);
    const main = client.open();
    main.send(requestHeaders({ 'x-request-id': 'req-obs' }));
    const first = await main.next();
    expect(first.mode_override).toEqual({ request_body_mode: 'BUFFERED', response_body_mode: 'NONE', response_header_mode: 'SKIP' });
    main.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
    await main.next();
    main.end(); // Envoy closes the main stream: nothing more expected on it
    await main.status;

    const obs = client.open();
    obs.send(requestHeaders({ 'x-request-id': 'req-obs' }, { observability_mode: true }));
    obs.send({ response_headers: sse, observability_mode: true });
    for (const part of ['data: {"a":', '1}\n\n', 'data: [DONE]\n\n']) obs.send({ response_body: { body: Buffer.from(part) }, observability_mode: true });
    obs.send({ response_body: { body: Buffer.alloc(0), end_of_stream: true }, observability_mode: true });
    expect(await obs.silentFor(100)).toBe(true); // send-and-go: no answers
    expect(seen.text).toBe('data: {"a":1}\n\ndata: [DONE]\n\n');
    expect(seen.tenant).toBe('acme'); // state from the main stream's stages
    expect(seen.finished).toBe(0); // the observability stream is still open
    obs.end();
    await obs.status;
    await sleep(30);
    expect(seen.finished).toBe(1); // once, after both streams
  });

  it('an observability stream with no main stream to join feeds observers but runs no finish hooks of its own', async () => {
    gw = await startTestGateway({ pipeline: { streamObserver: true, stages: ['test-tenant', 'test-observe'] } }, [tagTenant, countChunks]);
    client = connect(gw.port);
    const obs = client.open();
    obs.send(requestHeaders({ 'x-request-id': 'req-orphan' }, { observability_mode: true }));
    obs.send({ response_headers: sse, observability_mode: true });
    obs.send({ response_body: { body: Buffer.from('data: y\n\n'), end_of_stream: true }, observability_mode: true });
    obs.end();
    await obs.status;
    await sleep(30);
    expect(seen.text).toBe('data: y\n\n');
    expect(seen.finished).toBe(0);
    expect(gw.logs.some((l) => String(l['msg']).startsWith('observability stream without a main stream'))).toBe(true);
  });

  it('runs finish hooks after the linger when no observability stream comes', async () => {
    gw = await startTestGateway({ pipeline: { streamObserver: true, observerLingerMs: 100, stages: ['test-tenant', 'test-observe'] } }, [tagTenant, countChunks]);
    client = connect(gw.port);
    const main = client.open();
    main.send(requestHeaders({ 'x-request-id': 'req-lonely' }, { protocol_config: { request_body_mode: 'NONE', response_body_mode: 'NONE' } }));
    await main.next();
    main.end();
    await main.status;
    await sleep(30);
    expect(seen.finished).toBe(0);
    await sleep(150);
    expect(seen.finished).toBe(1);
  });

  it('without streamObserver: the observer reads STREAMED chunks on the main stream', async () => {
    gw = await startTestGateway({ pipeline: { stages: ['test-tenant', 'test-observe'] } }, [tagTenant, countChunks]);
    client = connect(gw.port);
    const s = client.open();
    s.send(requestHeaders());
    expect((await s.next()).mode_override).toBeUndefined();
    s.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
    await s.next();
    s.send({ response_headers: sse });
    expect((await s.next()).mode_override).toEqual({ request_body_mode: 'BUFFERED', response_body_mode: 'STREAMED' });
    s.send({ response_body: { body: Buffer.from('data: x\n\n'), end_of_stream: true } });
    expect((await s.next()).response).toBe('response_body');
    expect(seen.text).toBe('data: x\n\n');
  });
});
