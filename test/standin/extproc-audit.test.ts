/**
 * Stand-in fidelity fixes found by auditing test/envoy-standin against Envoy's ext_proc sources
 * (source/extensions/filters/http/ext_proc/ext_proc.cc, the mid/late-2025 `main` the facts doc
 * reads — it has closeStreamMaybeGraceful, FULL_DUPLEX_STREAMED and status_on_error):
 *
 * - Filter::onData while the headers answer is pending: "For BUFFERED mode, return
 *   StopIterationAndBuffer so when buffered data reaches the per-connection-limit, Envoy will a
 *   send a 413" (StopIterationAndWatermark only for the other modes) → facts §2.4.
 * - Filter::closeGrpcStreamIfLastRespReceived → closeStreamMaybeGraceful(), which sets
 *   processing_complete_: after the close optimisation nothing is sent any more and no new stream
 *   is opened (openStream → IgnoreError) → facts §2.1.
 * - Filter::encodeHeaders: "If there is no external processing configured in the encoding path,
 *   closing the gRPC stream if it is still open" (encoding_state_.noExternalProcess()).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HeaderMap } from '../envoy-standin/headers.js';
import { MutationChecker, applyHeaderMutations } from '../envoy-standin/mutationRules.js';
import type { ProcessingRequest } from '../envoy-standin/proto.js';
import { autoRespond, bodyOf, continueFor, json, request, setHeader, sleep, standinFor, startScriptedExtProc, startUpstream, until } from './helpers.js';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const kinds = (ms: ProcessingRequest[]) => ms.map((m) => m.request);

const BUFFERED = {
  request_header_mode: 'SEND',
  request_body_mode: 'BUFFERED',
  response_header_mode: 'SEND',
  response_body_mode: 'BUFFERED',
};

/** Answers everything, but holds the answer to one kind of headers message for `holdMs`. */
const holdHeaders = (kind: 'request_headers' | 'response_headers', holdMs: number) =>
  autoRespond(async (m) => {
    if (m.request === kind) await sleep(holdMs);
    return continueFor(m);
  });

describe('BUFFERED body arriving while the headers answer is pending (StopIterationAndBuffer)', () => {
  it('answers 413 as soon as the held request body exceeds the buffer limit', async () => {
    const ep = await startScriptedExtProc(holdHeaders('request_headers', 300));
    const up = await startUpstream((r, res) => json(res, 200, { got: r.body.length }));
    const envoy = await standinFor(ep, up.url, { bufferLimit: 1000, extProc: { processing_mode: BUFFERED } });
    cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());

    // The whole 3000-byte body arrives while request_headers is unanswered.
    const res = await request(`${envoy.url}/x`, { body: 'a'.repeat(3000) });
    expect(res.status).toBe(413);
    expect(res.text).toBe('Payload Too Large');
    expect(up.requests).toHaveLength(0);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('request_payload_too_large');
    // The body never reaches the processor.
    // (The 413 is a local reply, which also resets the side stream at once — the server may not
    // even have accepted it yet.)
    expect(ep.streams.flatMap((st) => kinds(st.received))).not.toContain('request_body');
  });

  it('answers 500 when the held response body exceeds the buffer limit', async () => {
    const ep = await startScriptedExtProc(holdHeaders('response_headers', 300));
    const up = await startUpstream((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('y'.repeat(3000));
    });
    const envoy = await standinFor(ep, up.url, { bufferLimit: 1000, extProc: { processing_mode: BUFFERED } });
    cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());

    const res = await request(`${envoy.url}/x`, { body: 'small' });
    expect(res.status).toBe(500);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('response_payload_too_large');
    expect(kinds(ep.streams[0]!.received)).not.toContain('response_body');
  });

  it('still holds STREAMED chunks without a limit (StopIterationAndWatermark) and sends them as one message', async () => {
    const ep = await startScriptedExtProc(holdHeaders('request_headers', 200));
    const up = await startUpstream((r, res) => json(res, 200, { got: r.body.length }));
    const envoy = await standinFor(ep, up.url, {
      bufferLimit: 1000,
      extProc: { processing_mode: { ...BUFFERED, request_body_mode: 'STREAMED', response_body_mode: 'NONE' } },
    });
    cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());

    const res = await request(`${envoy.url}/x`, { body: 'a'.repeat(3000) });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ got: 3000 });
    const bodies = ep.streams[0]!.received.filter((m) => m.request === 'request_body');
    expect(bodies).toHaveLength(1);
    expect(bodyOf(bodies[0]!).length).toBe(3000);
  });
});

describe('close optimisation ends processing (closeStreamMaybeGraceful sets processing_complete_)', () => {
  it('does not open a second stream for request data that follows the last expected answer', async () => {
    // STREAMED request, response headers only: the response_headers answer is the last one
    // expected (response body NONE), so the stream is closed then — while the request body is
    // still arriving. Later request chunks pass through unprocessed; no new stream is opened.
    const ep = await startScriptedExtProc(autoRespond());
    let got = '';
    const upServer = http.createServer((req, res) => {
      // Answers with headers at once, ends the response once the whole request body is in.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      req.on('data', (d: Buffer) => (got += d.toString()));
      req.on('end', () => res.end(`got ${got}`));
    });
    await new Promise<void>((r) => upServer.listen(0, '127.0.0.1', () => r()));
    const upUrl = `http://127.0.0.1:${(upServer.address() as AddressInfo).port}`;
    const envoy = await standinFor(ep, upUrl, {
      extProc: {
        processing_mode: { request_header_mode: 'SEND', request_body_mode: 'STREAMED', response_header_mode: 'SEND', response_body_mode: 'NONE' },
      },
    });
    cleanup.push(
      () => ep.close(),
      () =>
        new Promise<void>((r) => {
          upServer.close(() => r());
          upServer.closeAllConnections();
        }),
      () => envoy.close(),
    );

    const res = await request(`${envoy.url}/x`, { parts: ['one,', 'two,', 'three'], partDelayMs: 150, chunked: true });
    expect(res.status).toBe(200);
    expect(res.text).toBe('got one,two,three');
    expect(ep.streams).toHaveLength(1);
    const s = ep.streams[0]!;
    expect(s.cancelled).toBe(true);
    expect(kinds(s.received)).toEqual(['request_headers', 'response_headers']);
    expect(envoy.stats.counter('ext_proc.streams_started')).toBe(1);
  });
});

describe('stream closed at encodeHeaders when the encoding path has nothing to process', () => {
  it('closes a request-only stream when the response headers arrive, before the response body ends', async () => {
    // Request BUFFERED (a BUFFERED body answer never triggers the last-response close), response
    // SKIP/NONE: Filter::encodeHeaders closes the stream (encoding_state_.noExternalProcess()).
    const ep = await startScriptedExtProc(autoRespond());
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const up = await startUpstream(async (_r, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first ');
      await released;
      res.end('last');
    });
    const envoy = await standinFor(ep, up.url, {
      extProc: {
        processing_mode: { request_header_mode: 'SEND', request_body_mode: 'BUFFERED', response_header_mode: 'SKIP', response_body_mode: 'NONE' },
      },
    });
    cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());

    const pending = request(`${envoy.url}/x`, { body: 'hello' });
    await until(() => up.requests.length === 1);
    const s = () => ep.streams[0]!;
    // The response has started but not ended: the stream must already be closed.
    await until(() => s().cancelled, 1000);
    expect(kinds(s().received)).toEqual(['request_headers', 'request_body']);
    release();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.text).toBe('first last');
  });
});

describe('upstream_codec (HTTP/1)', () => {
  it('sends the request headers upstream before the request body starts', async () => {
    // Without body processing the router forwards the headers at once; the HTTP/1 codec writes
    // them immediately, so the upstream sees the request while the client is still silent.
    const ep = await startScriptedExtProc(autoRespond());
    let headersAt = 0;
    let firstDataAt = 0;
    const upServer = http.createServer((req, res) => {
      headersAt = Date.now();
      req.once('data', () => (firstDataAt = Date.now()));
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((r) => upServer.listen(0, '127.0.0.1', () => r()));
    const upUrl = `http://127.0.0.1:${(upServer.address() as AddressInfo).port}`;
    const envoy = await standinFor(ep, upUrl, {
      extProc: { processing_mode: { request_header_mode: 'SKIP', response_header_mode: 'SKIP' } },
    });
    cleanup.push(
      () => ep.close(),
      () =>
        new Promise<void>((r) => {
          upServer.close(() => r());
          upServer.closeAllConnections();
        }),
      () => envoy.close(),
    );
    const res = await request(`${envoy.url}/x`, { parts: ['late body'], partDelayMs: 300, chunked: true });
    expect(res.status).toBe(200);
    expect(headersAt).toBeGreaterThan(0);
    expect(firstDataAt - headersAt).toBeGreaterThanOrEqual(200);
  });
});

describe('header value validity (HeaderUtility::headerValueIsValid)', () => {
  const checker = new MutationChecker({ allow_all_routing: false, allow_envoy: false, disallow_system: false, disallow_all: false, disallow_is_error: false });
  const apply = (value: string) =>
    applyHeaderMutations({ set_headers: [setHeader('x-v', value)] }, new HeaderMap(), checker, { replacingMessage: false, removeContentLength: false, onRejected: () => {} });

  it('rejects control characters other than HTAB (and DEL), accepts HTAB and obs-text', () => {
    for (const bad of ['a\x01b', 'esc\x1b[0m', 'del\x7f', 'nul\x00', 'cr\rlf']) {
      expect(apply(bad)).toEqual({ ok: false, message: 'Invalid character in set_headers mutation.' });
    }
    for (const good of ['a\tb', 'caf\xe9', ' padded ', '']) expect(apply(good)).toEqual({ ok: true });
  });

  it('answers 500 when the processor sets a header value with a control character', async () => {
    const ep = await startScriptedExtProc(
      autoRespond((m) => (m.request === 'request_headers' ? { request_headers: { response: { header_mutation: { set_headers: [setHeader('x-model', 'gpt\x1b-4')] } } } } : undefined)),
    );
    const up = await startUpstream((_r, res) => json(res, 200, {}));
    const envoy = await standinFor(ep, up.url, {});
    cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());
    const res = await request(`${envoy.url}/x`);
    expect(res.status).toBe(500);
    expect(up.requests).toHaveLength(0);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('Invalid_character_in_set_headers_mutation.');
  });
});

describe('mode_override outside allowed_override_modes', () => {
  it('ignores a disallowed override even to a body mode the stand-in does not implement', async () => {
    // ext_proc.cc onReceiveMessage: the allow-list is checked first; a disallowed override is
    // dropped ("Processing mode overridden by server is disallowed") and processing goes on.
    const ep = await startScriptedExtProc(
      autoRespond((m) => (m.request === 'response_headers' ? { response_headers: {}, mode_override: { response_body_mode: 'FULL_DUPLEX_STREAMED' } } : undefined)),
    );
    const up = await startUpstream((_r, res) => json(res, 200, { ok: true }));
    const envoy = await standinFor(ep, up.url, {
      extProc: {
        processing_mode: BUFFERED,
        allow_mode_override: true,
        allowed_override_modes: [{ request_body_mode: 'NONE', response_header_mode: 'SEND', response_body_mode: 'STREAMED' }],
      },
    });
    cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());
    const res = await request(`${envoy.url}/x`, { body: '{}' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ ok: true });
    expect(envoy.stats.counter('ext_proc.mode_override_disallowed')).toBe(1);
    expect(envoy.stats.errors).toEqual([]);
    expect(kinds(ep.streams[0]!.received)).toEqual(['request_headers', 'request_body', 'response_headers', 'response_body']);
  });
});
