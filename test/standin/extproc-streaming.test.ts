/**
 * Body delivery modes (facts §2.1, §2.5): STREAMED chunks with random boundaries that split SSE
 * events and UTF-8 characters, pipelining without waiting for earlier answers, coalescing of
 * chunks that arrived before the headers answer, content-length removal, and responses written to
 * the client chunk by chunk (no buffering in the stand-in).
 */
import type http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProcessingRequest } from '../envoy-standin/proto.js';
import {
  autoRespond,
  bodyOf,
  continueFor,
  eosOf,
  header,
  request,
  standinFor,
  startScriptedExtProc,
  startUpstream,
  type ScriptedStream,
} from './helpers.js';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const STREAMED = {
  processing_mode: {
    request_header_mode: 'SEND',
    request_body_mode: 'STREAMED',
    response_header_mode: 'SEND',
    response_body_mode: 'STREAMED',
  },
};

/** SSE events with multi-byte characters, as an LLM stream sends them. */
const EVENTS = Array.from({ length: 12 }, (_, i) => `data: {"i":${i},"delta":"héllo wörld — 你好 🎉 ${'x'.repeat(i * 7)}"}\n\n`);
const SSE = EVENTS.join('') + 'data: [DONE]\n\n';

function sseUpstream(gapMs = 2) {
  return startUpstream(async (_r, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const e of EVENTS) {
      res.write(e);
      await new Promise((r) => setTimeout(r, gapMs));
    }
    res.end('data: [DONE]\n\n');
  });
}

function bodies(s: ScriptedStream, kind: 'request_body' | 'response_body'): ProcessingRequest[] {
  return s.received.filter((m) => m.request === kind);
}

function splitsUtf8(chunks: Buffer[]): boolean {
  const dec = new TextDecoder('utf-8', { fatal: true });
  return chunks.some((c) => {
    try {
      dec.decode(c);
      return false;
    } catch {
      return true;
    }
  });
}

async function setup(script: Parameters<typeof startScriptedExtProc>[0], up: Awaited<ReturnType<typeof startUpstream>>, cfg: Parameters<typeof standinFor>[2] = { extProc: STREAMED }) {
  const ep = await startScriptedExtProc(script);
  const envoy = await standinFor(ep, up.url, cfg);
  cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());
  return { ep, envoy };
}

describe('STREAMED bodies', () => {
  it('delivers the response in chunks with random boundaries that reassemble exactly', async () => {
    const up = await sseUpstream();
    const { ep, envoy } = await setup(autoRespond(), up);
    const res = await request(`${envoy.url}/v1/chat/completions`, { body: '{"stream":true}' });
    expect(res.status).toBe(200);
    expect(res.text).toBe(SSE);
    // STREAMED: content-length removed, so the client gets chunked transfer.
    expect(res.headers['content-length']).toBeUndefined();

    const s = ep.streams[0]!;
    const chunks = bodies(s, 'response_body');
    expect(chunks.length).toBeGreaterThan(EVENTS.length);
    expect(Buffer.concat(chunks.map(bodyOf)).toString()).toBe(SSE);
    // Exactly the last message carries end_of_stream; chunked upstream → empty final chunk.
    expect(chunks.map(eosOf).filter(Boolean)).toHaveLength(1);
    expect(eosOf(chunks[chunks.length - 1]!)).toBe(true);
    expect(bodyOf(chunks[chunks.length - 1]!).length).toBe(0);
    // Boundaries ignore SSE events and UTF-8 characters.
    expect(chunks.slice(0, -1).some((c) => !bodyOf(c).toString('latin1').endsWith('\n\n'))).toBe(true);
    expect(splitsUtf8(chunks.map(bodyOf))).toBe(true);
  });

  it('is deterministic for a seed', async () => {
    const up = await sseUpstream(0);
    const runs: number[][] = [];
    for (let i = 0; i < 2; i++) {
      const ep = await startScriptedExtProc(autoRespond());
      const envoy = await standinFor(ep, up.url, { extProc: STREAMED });
      // In parts, after the headers answer: sent all at once, the body would arrive while the
      // headers response is pending and go out as one message.
      await request(`${envoy.url}/x`, { parts: ['a'.repeat(1000), 'b'.repeat(1000), 'c'.repeat(1000)], partDelayMs: 50 });
      runs.push(bodies(ep.streams[0]!, 'request_body').map((m) => bodyOf(m).length));
      await envoy.close();
      await ep.close();
    }
    await up.close();
    expect(runs[0]).toEqual(runs[1]);
    expect(runs[0]!.length).toBeGreaterThan(5);
  });

  it('pipelines chunks without waiting for earlier body responses', async () => {
    const up = await startUpstream((r, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`got ${r.body.length}`);
    });
    const body = 'z'.repeat(4000);
    const { ep, envoy } = await setup(async (s) => {
      const h = await s.next();
      s.send(continueFor(h));
      // Collect every request chunk before answering any: only possible if the proxy does not
      // wait for the answer to chunk N before sending chunk N+1.
      const pending: ProcessingRequest[] = [];
      for (;;) {
        const m = await s.next();
        pending.push(m);
        if (eosOf(m)) break;
      }
      for (const m of pending) s.send(continueFor(m));
      await autoRespond()(s);
    }, up);
    const res = await request(`${envoy.url}/x`, { parts: [body.slice(0, 1500), body.slice(1500, 3000), body.slice(3000)], partDelayMs: 15 });
    expect(res.status).toBe(200);
    expect(res.text).toBe('got 4000');
    const chunks = bodies(ep.streams[0]!, 'request_body');
    expect(chunks.length).toBeGreaterThan(3);
    expect(Buffer.concat(chunks.map(bodyOf)).toString()).toBe(body);
    expect(up.requests[0]!.body.toString()).toBe(body);
    // Content-length was seen by the processor but removed before the upstream (chunked).
    expect(header(ep.streams[0]!.received[0]!, 'content-length')).toBe('4000');
    expect(up.requests[0]!.headers['content-length']).toBeUndefined();
    expect(up.requests[0]!.headers['transfer-encoding']).toBe('chunked');
  });

  it('coalesces chunks that arrived before the headers response into one message', async () => {
    const up = await startUpstream((r, res) => void res.end(`len ${r.body.length}`));
    const { ep, envoy } = await setup(async (s) => {
      const h = await s.next();
      await new Promise((r) => setTimeout(r, 100)); // parts a and b arrive meanwhile
      s.send(continueFor(h));
      await autoRespond()(s);
    }, up);
    const parts = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(200));
    const res = await request(`${envoy.url}/x`, { parts, partDelayMs: 40 });
    expect(res.text).toBe('len 1000');
    const msgs = bodies(ep.streams[0]!, 'request_body');
    const chunks = msgs.map(bodyOf);
    // First body message = everything that queued up while the headers response was pending,
    // though the stand-in received it in several random pieces.
    expect(chunks[0]!.toString().startsWith('a'.repeat(200) + 'b')).toBe(true);
    expect(eosOf(msgs[0]!)).toBe(false);
    expect(msgs.length).toBeGreaterThan(2);
    expect(Buffer.concat(chunks).toString()).toBe(parts.join(''));
  });

  it('sends the whole body as one end_of_stream message if it all arrived while waiting, and applies header mutations from it', async () => {
    const up = await startUpstream((r, res) => void res.end(JSON.stringify({ h: r.headers['x-from-body'] ?? null, body: r.body.toString() })));
    const { ep, envoy } = await setup(async (s) => {
      const h = await s.next();
      await new Promise((r) => setTimeout(r, 60));
      s.send(continueFor(h));
      const b = await s.next();
      s.send({
        request_body: {
          response: {
            header_mutation: { set_headers: [{ header: { key: 'x-from-body', raw_value: Buffer.from('yes') } }] },
            body_mutation: { body: Buffer.from('NEW') },
          },
        },
      });
      await autoRespond()(s);
      void b;
    }, up);
    const res = await request(`${envoy.url}/x`, { body: 'original body' });
    const got = JSON.parse(res.text);
    expect(got).toEqual({ h: 'yes', body: 'NEW' });
    const reqBodies = bodies(ep.streams[0]!, 'request_body');
    expect(reqBodies).toHaveLength(1);
    expect(bodyOf(reqBodies[0]!).toString()).toBe('original body');
    expect(eosOf(reqBodies[0]!)).toBe(true);
  });

  it('applies per-chunk body mutations and clear_body, and ignores header mutations in STREAMED body responses', async () => {
    let n = 0;
    const up = await sseUpstream();
    const { ep, envoy } = await setup(
      autoRespond((m) => {
        if (m.request !== 'response_body') return undefined;
        n++;
        if (n === 2) return { response_body: { response: { body_mutation: { clear_body: true } } } };
        return {
          response_body: {
            response: {
              header_mutation: { set_headers: [{ header: { key: 'x-late', raw_value: Buffer.from('1') } }] },
              body_mutation: { body: Buffer.from(bodyOf(m).toString('latin1').toUpperCase(), 'latin1') },
            },
          },
        };
      }),
      up,
    );
    const res = await request(`${envoy.url}/x`);
    const chunks = bodies(ep.streams[0]!, 'response_body').map((m) => bodyOf(m).toString('latin1'));
    const expected = chunks.map((c, i) => (i === 1 ? '' : c.toUpperCase())).join('');
    expect(res.body.toString('latin1')).toBe(expected);
    expect(res.headers['x-late']).toBeUndefined();
  });

  it('writes each streamed response chunk to the client at once (no buffering)', async () => {
    let clientGot!: () => void;
    let waitClient = new Promise<void>((r) => (clientGot = r));
    const up = await startUpstream(async (_r, res: http.ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < 4; i++) {
        res.write(`data: ${i}\n\n`);
        // Next event only once the client has seen this one: a buffering proxy would deadlock.
        await Promise.race([waitClient, new Promise((_, rej) => setTimeout(() => rej(new Error('client did not receive event')), 2000))]);
        waitClient = new Promise<void>((r) => (clientGot = r));
      }
      res.end();
    });
    const { envoy } = await setup(autoRespond(), up);
    let seen = '';
    const res = await request(`${envoy.url}/x`, {
      onChunk: (d) => {
        seen += d.toString();
        const events = seen.split('\n\n').length - 1;
        if (events > 0) clientGot();
      },
    });
    expect(res.status).toBe(200);
    expect(res.text).toBe('data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n');
  });

  it('sometimes ends a known-length body with an empty end_of_stream chunk, sometimes with data', async () => {
    const up = await startUpstream((r, res) => void res.end(String(r.body.length)));
    const { ep, envoy } = await setup(autoRespond(), up);
    for (let i = 0; i < 8; i++) await request(`${envoy.url}/x`, { parts: ['p'.repeat(50), 'q'.repeat(200 + i)], partDelayMs: 10 });
    const lastChunks = ep.streams.map((s) => {
      const b = bodies(s, 'request_body');
      return b[b.length - 1]!;
    });
    expect(lastChunks.every(eosOf)).toBe(true);
    const emptyEnds = lastChunks.filter((m) => bodyOf(m).length === 0).length;
    expect(emptyEnds).toBeGreaterThan(0);
    expect(emptyEnds).toBeLessThan(lastChunks.length);
  });
});

describe('BUFFERED_PARTIAL bodies', () => {
  const PARTIAL = { processing_mode: { request_header_mode: 'SEND', request_body_mode: 'BUFFERED_PARTIAL', response_header_mode: 'SKIP' } };

  it('sends what fits the buffer limit once, then lets the rest through unprocessed', async () => {
    const up = await startUpstream((r, res) => void res.end(r.body.toString()));
    const { ep, envoy } = await setup(
      autoRespond((m) =>
        m.request === 'request_body' ? { request_body: { response: { body_mutation: { body: Buffer.from(bodyOf(m).toString().toUpperCase()) } } } } : undefined,
      ),
      up,
      { extProc: PARTIAL, bufferLimit: 1000 },
    );
    const parts = ['a'.repeat(700), 'b'.repeat(700), 'c'.repeat(700)];
    const res = await request(`${envoy.url}/x`, { parts, partDelayMs: 30 });
    const msgs = bodies(ep.streams[0]!, 'request_body');
    expect(msgs).toHaveLength(1);
    const sent = bodyOf(msgs[0]!).toString();
    expect(sent.length).toBeGreaterThan(1000);
    expect(eosOf(msgs[0]!)).toBe(false);
    // The processed prefix comes back upper-cased; the rest passed through as sent.
    const all = parts.join('');
    expect(res.text).toBe(sent.toUpperCase() + all.slice(sent.length));
    expect(up.requests[0]!.headers['content-length']).toBeUndefined();
  });

  it('behaves like BUFFERED for a body under the limit', async () => {
    const up = await startUpstream((r, res) => void res.end(r.body.toString()));
    const { ep, envoy } = await setup(autoRespond(), up, { extProc: PARTIAL, bufferLimit: 1000 });
    const res = await request(`${envoy.url}/x`, { parts: ['x'.repeat(100), 'y'.repeat(100)], partDelayMs: 20 });
    expect(res.text).toBe('x'.repeat(100) + 'y'.repeat(100));
    const msgs = bodies(ep.streams[0]!, 'request_body');
    expect(msgs).toHaveLength(1);
    expect(eosOf(msgs[0]!)).toBe(true);
    expect(bodyOf(msgs[0]!).length).toBe(200);
  });
});
