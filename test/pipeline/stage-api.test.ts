/**
 * The stage API the domain stages build on (issue 6), in process through the harness: composable
 * request edits, SSE parsed once per chunk and rewritten once, time budgets under the failure
 * policy, the stream's AbortSignal, finish outcomes, errors in the client's dialect.
 */
import { describe, expect, it } from 'vitest';
import { slot, type Outcome } from '../../extproc/pipeline/exchange.js';
import { startEarly } from '../../extproc/pipeline/pipeline.js';
import type { SseEvent } from '../../extproc/providers/sse.js';
import { pipelineOf, runScript, stage } from '../helpers/harness.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const chat = { model: 'gpt-4o', messages: [{ role: 'user', content: 'mail alice@example.org please' }] };
const sseHeaders = { 'content-type': 'text/event-stream' };

describe('request edits compose in config order', () => {
  it('a stage after a redacting stage sees the redacted text; the body is serialised once with its content-length', async () => {
    let seenByTranslator = '';
    let serialisations = 0;
    const redact = stage('redact', {
      requestBody: (x) => x.editRequest((json) => {
        const body = json as typeof chat;
        body.messages[0]!.content = body.messages[0]!.content.replace('alice@example.org', '<EMAIL_1>');
      }),
    });
    const translate = stage('translate', {
      requestBody: (x) => {
        seenByTranslator = (x.requestJson() as typeof chat).messages[0]!.content;
        // Returning a value replaces the whole JSON (a dialect translation does this).
        x.editRequest((json) => ({ ...(json as object), model: 'claude-sonnet-4', toJSON() { serialisations++; return { ...this, toJSON: undefined }; } }));
      },
    });
    const run = await runScript(pipelineOf([redact, translate]), { requestBody: chat });
    expect(seenByTranslator).toBe('mail <EMAIL_1> please');
    const body = run.requestBody!.body!;
    expect(JSON.parse(body.toString())).toEqual({ model: 'claude-sonnet-4', messages: [{ role: 'user', content: 'mail <EMAIL_1> please' }] });
    expect(run.requestBody!.setHeaders.get('content-length')).toBe(String(body.length));
    expect(serialisations).toBe(1);
  });

  it('without edits the body is left alone (no replacement, no content-length)', async () => {
    const reader = stage('reader', { requestBody: (x) => void x.requestJson() });
    const run = await runScript(pipelineOf([reader]), { requestBody: chat });
    expect(run.requestBody!.body).toBeUndefined();
    expect(run.requestBody!.setHeaders.size).toBe(0);
  });

  it('an immediate answer wins over edits: nothing is serialised', async () => {
    const edit = stage('edit', { requestBody: (x) => x.editRequest(() => ({ changed: true })) });
    const refuse = stage('refuse', { requestBody: (_x, out) => out.fail('FORBIDDEN', 'not for you') });
    const run = await runScript(pipelineOf([edit, refuse]), { requestBody: chat });
    expect(run.reply?.status).toBe(403);
    expect(run.requestBody!.body).toBeUndefined();
  });
});

describe('SSE events are parsed once per chunk', () => {
  it('every stage gets the same parsed events for a chunk; events split across chunks arrive whole', async () => {
    const seen: (readonly SseEvent[])[] = [];
    const a = stage('a', { responseBody: (x, _o, chunk) => void seen.push(x.responseEvents(chunk)) });
    const b = stage('b', { responseBody: (x, _o, chunk) => void seen.push(x.responseEvents(chunk)) });
    await runScript(pipelineOf([a, b]), {
      requestBody: chat,
      responseHeaders: sseHeaders,
      responseChunks: ['data: {"n":1}\n\nda', 'ta: {"n":2}\r', '\n\r\n', 'data: [DONE]\n\n'],
    });
    expect(seen).toHaveLength(8);
    for (let i = 0; i < 8; i += 2) expect(seen[i]).toBe(seen[i + 1]); // same array: parsed once
    expect(seen.filter((_, i) => i % 2 === 0).map((events) => events.map((e) => e.data))).toEqual([['{"n":1}'], [], ['{"n":2}'], ['[DONE]']]);
  });

  it('a rewriting stage changes events; the chunk is re-serialised once, later stages see the edit, the received events stay as they came', async () => {
    let laterSaw = '';
    let received = '';
    const restore = stage('restore', {
      rewritesEvents: true,
      requestHeaders: (x) => x.willEditResponseEvents(),
      responseBody: (x, _o, chunk) => x.editResponseEvents(chunk, (events) => events.map((e) => ({ ...e, data: e.data.replace('<EMAIL_1>', 'alice@example.org') }))),
    });
    const later = stage('later', {
      responseBody: (x, _o, chunk) => {
        laterSaw += x.responseEvents(chunk).map((e) => e.data).join('');
        received += x.receivedResponseEvents(chunk).map((e) => e.data).join('');
      },
    });
    const run = await runScript(pipelineOf([restore, later]), {
      requestBody: chat,
      responseHeaders: sseHeaders,
      responseChunks: ['data: {"t":"<EMA', 'IL_1>"}\n\n', ': keep-alive\n\ndata: [DONE]\n\n'],
    });
    expect(run.responseBody.map((o) => o.body?.toString())).toEqual(['', 'data: {"t":"alice@example.org"}\n\n', 'data: [DONE]\n\n']);
    expect(laterSaw).toBe('{"t":"alice@example.org"}[DONE]');
    expect(received).toBe('{"t":"<EMAIL_1>"}[DONE]');
  });

  it('an exchange no stage declared for passes its chunks as bytes, even with a rewriting stage configured', async () => {
    const restore = stage('restore', { rewritesEvents: true, responseBody: (x, _o, chunk) => void x.responseEvents(chunk) });
    const run = await runScript(pipelineOf([restore]), {
      requestBody: chat,
      responseHeaders: sseHeaders,
      responseChunks: ['data: {"t":"a', 'b"}\n\n', 'data: [DONE]\n\n'],
    });
    expect(run.responseBody.map((o) => o.body)).toEqual([undefined, undefined, undefined]); // unchanged: Envoy forwards the bytes
  });

  it('editing undeclared events, or declaring once the body started, is a bug: the stage fails', async () => {
    const undeclared = stage('undeclared', { rewritesEvents: true, responseBody: (x, _o, chunk) => x.editResponseEvents(chunk, () => []) });
    const late = stage('late', { rewritesEvents: true, responseBody: (x) => x.willEditResponseEvents() });
    for (const s of [undeclared, late]) {
      const run = await runScript(pipelineOf([s]), { requestBody: chat, responseHeaders: sseHeaders, responseChunks: ['data: {}\n\n'] });
      expect(run.logs.some((l) => l['msg'] === 'stage failed; failing open' && l['stage'] === s.name)).toBe(true);
    }
  });

  it('a JSON answer has no events', async () => {
    let events: readonly SseEvent[] | undefined;
    const a = stage('a', { responseBody: (x, _o, chunk) => void (events = x.responseEvents(chunk)) });
    await runScript(pipelineOf([a]), { requestBody: chat, responseHeaders: { 'content-type': 'application/json' }, responseChunks: ['{"ok":true}'] });
    expect(events).toEqual([]);
  });
});

describe('slow stages have a bound', () => {
  it('an open stage that hangs past timeoutMs is skipped: later stages run, its late writes change nothing', async () => {
    let release!: () => void;
    const hung = stage('hung', {
      timeoutMs: 30,
      requestBody: async (_x, out) => {
        await new Promise<void>((r) => (release = r));
        out.setHeader('x-late', 'yes');
      },
    });
    const after = stage('after', { requestBody: (_x, out) => out.setHeader('x-after', '1') });
    const run = await runScript(pipelineOf([hung, after]), { requestBody: chat });
    release();
    await sleep(5);
    expect(run.requestBody!.setHeaders.get('x-after')).toBe('1');
    expect(run.requestBody!.setHeaders.has('x-late')).toBe(false);
    expect(run.logs.some((l) => l['msg'] === 'stage timed out; failing open' && l['stage'] === 'hung')).toBe(true);
  });

  it('a closed stage that hangs answers 503 in the client dialect', async () => {
    const hung = stage('hung', { failure: 'closed', timeoutMs: 20, requestBody: () => new Promise<void>(() => undefined) });
    const run = await runScript(pipelineOf([hung]), { requestHeaders: { ':path': '/v1/messages' }, requestBody: chat });
    expect(run.reply?.status).toBe(503);
    expect(JSON.parse(String(run.reply?.body))).toEqual({ type: 'error', error: { type: 'overloaded_error', message: 'the gateway could not process the request in time (hung)' } });
  });

  it('work started early and awaited later (or never) raises no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    const reservation = slot<Promise<string>>('reservation');
    const early = stage('early', {
      requestHeaders: (x) => x.set(reservation, startEarly(sleep(5).then(() => Promise.reject(new Error('redis down'))))),
      requestBody: async (x, out) => {
        await x.get(reservation)!.catch(() => out.setHeader('x-limit', 'fail-open'));
      },
    });
    const never = stage('never', { requestHeaders: () => void startEarly(Promise.reject(new Error('ignored'))) });
    const run = await runScript(pipelineOf([early, never]), { requestBody: chat });
    await sleep(20);
    process.off('unhandledRejection', onUnhandled);
    expect(run.requestBody!.setHeaders.get('x-limit')).toBe('fail-open');
    expect(unhandled).toEqual([]);
  });

  it('the exchange signal fires when the stream closes', async () => {
    let signal: AbortSignal | undefined;
    const s = stage('s', { requestBody: (x) => void (signal = x.signal) });
    await runScript(pipelineOf([s]), { requestBody: chat, closeReason: 'cancelled' });
    expect(signal?.aborted).toBe(true);
  });
});

describe('finish hooks know how the exchange ended', () => {
  const outcomes: Outcome[] = [];
  const recorder = stage('recorder', { responseHeaders: () => undefined, finish: (_x, o) => void outcomes.push(o) });

  it.each([
    ['completed', { requestBody: chat, responseHeaders: {}, responseChunks: ['{}'] }, { kind: 'completed', status: 200 }],
    ['upstream-error', { requestBody: chat, responseHeaders: { ':status': '529' } }, { kind: 'upstream-error', status: 529 }],
    ['no-response (Envoy local reply skipped ext_proc)', { requestBody: chat, closeReason: 'cancelled' as const }, { kind: 'no-response', status: undefined }],
    ['client-gone mid-stream', { requestBody: chat, responseHeaders: sseHeaders, closeReason: 'cancelled' as const }, { kind: 'client-gone', status: 200 }],
    ['shutdown', { requestBody: chat, closeReason: 'shutdown' as const }, { kind: 'shutdown' }],
  ])('%s', async (_name, script, expected) => {
    outcomes.length = 0;
    await runScript(pipelineOf([recorder]), script);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject(expected);
  });

  it('immediate', async () => {
    outcomes.length = 0;
    const refuse = stage('refuse', { requestBody: (_x, out) => out.fail('RATE_LIMITED', 'slow down', { retryAfterSeconds: 3 }) });
    await runScript(pipelineOf([refuse, recorder]), { requestBody: chat });
    expect(outcomes[0]).toMatchObject({ kind: 'immediate', status: 429 });
  });

  it('hooks run concurrently, and one failing does not stop the others', async () => {
    const order: string[] = [];
    const slow = stage('slow', { finish: async () => { order.push('slow-start'); await sleep(30); order.push('slow-end'); } });
    const failing = stage('failing', { finish: () => { order.push('failing'); throw new Error('boom'); } });
    const fast = stage('fast', { finish: async () => { await sleep(1); order.push('fast'); } });
    const run = await runScript(pipelineOf([slow, failing, fast]), { requestBody: chat });
    expect(order).toEqual(['slow-start', 'failing', 'fast', 'slow-end']);
    expect(run.logs.some((l) => l['msg'] === 'stage finish failed' && l['stage'] === 'failing')).toBe(true);
  });
});

describe('errors a client should see are answers in its dialect', () => {
  const limited = stage('limited', {
    requestBody: (_x, out) => out.fail('RATE_LIMITED', 'request limit of 10 per minute reached', { retryAfterSeconds: 12.2, headers: { 'x-ratelimit-limit-requests': '10' } }),
  });

  it('OpenAI shape on /v1/chat/completions', async () => {
    const run = await runScript(pipelineOf([limited]), { requestBody: chat });
    expect(run.reply?.status).toBe(429);
    expect(run.reply?.headers).toMatchObject({ 'content-type': 'application/json', 'retry-after': '13', 'x-ratelimit-limit-requests': '10' });
    expect(JSON.parse(String(run.reply?.body))).toEqual({ error: { message: 'request limit of 10 per minute reached', type: 'rate_limit_error', code: 'rate_limited', param: null } });
  });

  it('Anthropic shape on /v1/messages', async () => {
    const run = await runScript(pipelineOf([limited]), { requestHeaders: { ':path': '/v1/messages' }, requestBody: chat });
    expect(JSON.parse(String(run.reply?.body))).toEqual({ type: 'error', error: { type: 'rate_limit_error', message: 'request limit of 10 per minute reached' } });
  });

  it('an unreadable body under reject is answered in the client dialect too', async () => {
    const reader = stage('reader', { requestBody: (x) => void x.requestJson() });
    const run = await runScript(pipelineOf([reader], { onInvalidRequest: 'reject' }), { requestHeaders: { ':path': '/v1/messages' }, requestBody: '{nope' });
    expect(run.reply?.status).toBe(400);
    expect(JSON.parse(String(run.reply?.body))).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: 'request body is not valid JSON' } });
  });
});
