// Scripted behaviours of the fakes: connection resets, truncated streams, delays, holding a
// stream until the test releases it, custom bodies, and byte-exact recording.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { faults, parseSSE, sseData, startFakeProvider, type FakeProvider } from './index.js';

let oa: FakeProvider;
let an: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  [oa, an] = await Promise.all([startFakeProvider({ kind: 'openai' }), startFakeProvider({ kind: 'anthropic' })]);
  openai = new OpenAI({ baseURL: `${oa.url}/v1`, apiKey: 'sk-x', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: an.url, apiKey: 'sk-ant-x', maxRetries: 0 });
});
afterAll(async () => {
  await Promise.all([oa.close(), an.close()]);
});
beforeEach(() => {
  oa.reset();
  an.reset();
});

const chatBody = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'one two three four five' }] };
const msgParams = { model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'alpha beta gamma' }] };

function postChat(body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${oa.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

/** Read from a body stream until `text` (accumulated) satisfies `done`. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  acc: { text: string },
  done: (text: string) => boolean,
): Promise<void> {
  const decoder = new TextDecoder();
  while (!done(acc.text)) {
    const { value, done: end } = await reader.read();
    if (end) throw new Error('stream ended early');
    acc.text += decoder.decode(value, { stream: true });
  }
}

describe('connection faults', () => {
  it('reset before headers: the SDK sees a connection error, the request is still recorded', async () => {
    oa.script(faults.resetBeforeHeaders());
    const err = await openai.chat.completions.create(chatBody).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
    await oa.idle();
    expect(oa.requests).toHaveLength(1);
    expect(oa.requests[0]!.json).toMatchObject(chatBody);
    expect(oa.responses[0]!.status).toBe(0);
    expect(oa.responses[0]!.outcome).toBe('reset');
    expect(oa.responses[0]!.chunks).toHaveLength(0);
    // the script is used up: the next request is answered normally
    await expect(openai.chat.completions.create(chatBody)).resolves.toMatchObject({ object: 'chat.completion' });
  });

  it('reset after headers: status arrives, then the body fails', async () => {
    oa.script(faults.resetAfterHeaders());
    const res = await postChat(chatBody);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    await oa.idle();
    expect(oa.responses[0]!.outcome).toBe('reset');
    expect(oa.responses[0]!.chunks).toHaveLength(0);
  });

  it('reset mid-stream: the SDK stream throws after the chunks already sent', async () => {
    oa.script(faults.resetAfterChunks(3));
    const stream = await openai.chat.completions.create({ ...chatBody, stream: true });
    let seen = 0;
    const err = await (async () => {
      for await (const _ of stream) seen++;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(seen).toBe(3);
    await oa.idle();
    expect(oa.responses[0]!.outcome).toBe('reset');
    expect(oa.responses[0]!.chunks).toHaveLength(3);
  });

  it('reset mid-body of a JSON answer cuts it in half', async () => {
    an.script({ resetAfterChunks: 1 });
    const err = await anthropic.messages.create(msgParams).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    await an.idle();
    const rec = an.responses[0]!;
    expect(rec.outcome).toBe('reset');
    expect(rec.chunks).toHaveLength(1);
    expect(rec.json).toBeUndefined(); // half a JSON document
  });
});

describe('streams that stop mid-answer', () => {
  it('anthropic: the HTTP response ends cleanly but without message_delta / message_stop', async () => {
    an.script(faults.stopAfterChunks(5));
    const stream = await anthropic.messages.create({ ...msgParams, stream: true });
    const types: string[] = [];
    for await (const ev of stream) types.push(ev.type);
    expect(types).not.toContain('message_stop');
    expect(types).not.toContain('message_delta');
    expect(types[0]).toBe('message_start');
    await an.idle();
    expect(an.responses[0]!.outcome).toBe('stopped');
    expect(an.responses[0]!.chunks).toHaveLength(5);
  });

  it('openai: no finish_reason and no [DONE]', async () => {
    oa.script(faults.stopAfterChunks(2));
    const res = await postChat({ ...chatBody, stream: true });
    const text = await res.text();
    const frames = parseSSE(text);
    expect(frames).toHaveLength(2);
    expect(text).not.toContain('[DONE]');
    expect(text).not.toContain('"finish_reason":"stop"');
  });

  it('a JSON body stopped after its first half is not valid JSON', async () => {
    oa.script(faults.stopAfterChunks(1));
    const res = await postChat(chatBody);
    expect(res.status).toBe(200);
    await expect(res.json()).rejects.toThrow();
  });
});

describe('timing', () => {
  it('slow first byte delays the status line', async () => {
    oa.script(faults.slowFirstByte(250));
    const t0 = Date.now();
    const res = await postChat(chatBody);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  it('a client timeout shorter than the delay fails and is recorded as client-closed', async () => {
    oa.script(faults.slowFirstByte(2000));
    const err = await openai.chat.completions.create(chatBody, { timeout: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    await oa.idle();
    expect(oa.responses[0]!.outcome).toBe('client-closed');
    expect(oa.responses[0]!.status).toBe(0);
  });

  it('chunk delays space the SSE frames out', async () => {
    oa.script({ firstChunkDelayMs: 60, chunkDelayMs: 40 });
    const t0 = Date.now();
    const res = await postChat({ ...chatBody, stream: true });
    const headersAfter = Date.now() - t0;
    await res.text();
    const rec = oa.responses[0]!;
    expect(headersAfter).toBeLessThan(60 + 200);
    expect(rec.chunkTimes[0]! - rec.headersAt!).toBeGreaterThanOrEqual(55);
    for (let i = 1; i < rec.chunkTimes.length; i++) {
      expect(rec.chunkTimes[i]! - rec.chunkTimes[i - 1]!).toBeGreaterThanOrEqual(35);
    }
  });
});

describe('holding a stream until the test releases it', () => {
  it('the first chunk reaches the client before the provider finishes', async () => {
    oa.script(faults.holdAfterChunks(2));
    const res = await postChat({ ...chatBody, stream: true });
    const reader = res.body!.getReader();
    const acc = { text: '' };
    await readUntil(reader, acc, (t) => parseSSE(t).length >= 2);
    const held = await oa.waitForHold();
    expect(held.index).toBe(0);
    expect(oa.responses[0]!.held).toBe(true);
    expect(oa.responses[0]!.outcome).toBe('pending');
    expect(acc.text).not.toContain('[DONE]');
    expect(parseSSE(acc.text)).toHaveLength(2);

    oa.release();
    await readUntil(reader, acc, (t) => t.includes('[DONE]'));
    await oa.idle();
    expect(oa.responses[0]!.outcome).toBe('complete');
    expect(acc.text).toBe(oa.responses[0]!.text);
  });

  it('with the SDK: the first text event arrives while the rest is held', async () => {
    an.script({ holdAfterChunks: 4 });
    const stream = anthropic.messages.stream(msgParams);
    const firstText = new Promise<string>((resolve) => stream.once('text', resolve));
    await expect(firstText).resolves.toBe('This');
    await an.waitForHold();
    an.release();
    const final = await stream.finalMessage();
    expect(final.content[0]).toMatchObject({ type: 'text' });
  });

  it('a release given before the hold lets it pass straight through', async () => {
    oa.script(faults.holdAfterChunks(1));
    oa.release();
    const res = await postChat({ ...chatBody, stream: true });
    expect(await res.text()).toContain('[DONE]');
  });

  it('a client that goes away while held is recorded as client-closed', async () => {
    oa.script(faults.holdAfterChunks(1));
    const ac = new AbortController();
    const res = await postChat({ ...chatBody, stream: true }, ac.signal);
    const reader = res.body!.getReader();
    await readUntil(reader, { text: '' }, (t) => t.length > 0);
    await oa.waitForHold();
    ac.abort();
    await oa.idle();
    expect(oa.responses[0]!.outcome).toBe('client-closed');
    expect(oa.responses[0]!.chunks).toHaveLength(1);
  });

  it('close() does not hang on a held response', async () => {
    const p = await startFakeProvider({ kind: 'openai', auth: false });
    p.script(faults.holdAfterChunks(1));
    const res = await fetch(`${p.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ ...chatBody, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    await p.waitForHold();
    await p.close();
    await reader.read().catch(() => undefined);
  });
});

describe('custom responses', () => {
  it('wrong content type on a normal answer', async () => {
    oa.script(faults.wrongContentType('text/html; charset=utf-8'));
    const res = await postChat(chatBody);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(JSON.parse(await res.text())).toMatchObject({ object: 'chat.completion' });
  });

  it('a custom body, status and content type (e.g. an HTML 502 from a proxy)', async () => {
    oa.script({ status: 502, contentType: 'text/html', body: '<html><body>502 Bad Gateway</body></html>' });
    const err = await openai.chat.completions.create(chatBody).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
  });

  it('custom SSE chunks are sent as separate writes', async () => {
    const frame = (content: string): string =>
      sseData({
        id: 'chatcmpl-custom',
        object: 'chat.completion.chunk',
        created: 1,
        model: 'm',
        choices: [{ index: 0, delta: { content }, finish_reason: null }],
      });
    oa.script({ chunks: [frame('Hel'), frame('lo'), sseData('[DONE]')], chunkDelayMs: 5 });
    const stream = await openai.chat.completions.create({ ...chatBody, stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hello');
    expect(oa.responses[0]!.chunks.map((c) => c.toString())).toEqual([frame('Hel'), frame('lo'), 'data: [DONE]\n\n']);
  });

  it('a 200 with a custom JSON object body, and extra headers', async () => {
    oa.script({ body: { hello: 'world' }, headers: { 'x-extra': '1' } });
    const res = await postChat(chatBody);
    expect(res.headers.get('x-extra')).toBe('1');
    expect(await res.json()).toEqual({ hello: 'world' });
  });
});

describe('script and recording', () => {
  it('behaviours apply in order, then the default', async () => {
    oa.script(faults.status(500), faults.rateLimited(1)).setDefault({ text: 'default!' });
    expect(oa.pendingScript()).toBe(2);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await postChat(chatBody);
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([500, 429, 200]);
    expect(oa.pendingScript()).toBe(0);
    expect((oa.responses[2]!.json as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content).toBe(
      'default!',
    );
    expect(oa.responses.map((r) => r.behaviour?.error?.status)).toEqual([500, 429, undefined]);
  });

  it('a failing default makes the provider look down until reset', async () => {
    an.setDefault(faults.overloaded());
    for (let i = 0; i < 2; i++) {
      await expect(anthropic.messages.create(msgParams)).rejects.toMatchObject({ status: 529 });
    }
    an.reset();
    await expect(anthropic.messages.create(msgParams)).resolves.toMatchObject({ type: 'message' });
  });

  it('the client receives byte-identical bytes to those recorded (anthropic SSE)', async () => {
    const res = await fetch(`${an.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'k', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ ...msgParams, stream: true }),
    });
    const got = Buffer.from(await res.arrayBuffer());
    await an.idle();
    expect(got.equals(an.responses[0]!.body)).toBe(true);
    expect(res.headers.get('request-id')).toBe(an.responses[0]!.headers['request-id']);
  });

  it('records raw body bytes exactly, even when they are not JSON', async () => {
    const raw = Buffer.from([0x7b, 0xff, 0x00, 0x7d]);
    const res = await fetch(`${oa.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-x', 'x-trace': 'abc' },
      body: raw,
    });
    expect(res.status).toBe(400);
    const r = oa.requests[0]!;
    expect(r.body.equals(raw)).toBe(true);
    expect(r.json).toBeUndefined();
    expect(r.headers['x-trace']).toBe('abc');
    expect(r.rawHeaders).toContain('x-trace');
  });

  it('waitForRequests resolves when the requests have arrived', async () => {
    const waiting = oa.waitForRequests(2);
    await Promise.all([openai.chat.completions.create(chatBody), openai.chat.completions.create(chatBody)]);
    const reqs = await waiting;
    expect(reqs).toHaveLength(2);
    await expect(oa.waitForRequests(3, 50)).rejects.toThrow(/2\/3 requests/);
  });
});
