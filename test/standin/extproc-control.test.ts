/**
 * How the stand-in reacts to what the processor answers (facts §2.3, §2.4, §2.8, §2.9, §2.10):
 * mode_override, spurious messages, timeouts, stream closes, immediate responses, buffer limits,
 * observability mode and dynamic metadata.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonToStruct, type ProcessingRequest } from '../envoy-standin/proto.js';
import {
  autoRespond,
  bodyOf,
  continueFor,
  eosOf,
  header,
  json,
  metadataOf,
  request,
  setHeader,
  sleep,
  standinFor,
  startScriptedExtProc,
  startUpstream,
  until,
  type TestConfig,
} from './helpers.js';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const BUFFERED = {
  request_header_mode: 'SEND',
  request_body_mode: 'BUFFERED',
  response_header_mode: 'SEND',
  response_body_mode: 'BUFFERED',
};

async function setup(
  script: Parameters<typeof startScriptedExtProc>[0],
  cfg: TestConfig = { extProc: { processing_mode: BUFFERED } },
  upstreamHandler: Parameters<typeof startUpstream>[0] = (r, res) => json(res, 200, { got: r.body.toString(), saw: r.headers['x-added'] ?? null }),
) {
  const ep = await startScriptedExtProc(script);
  const up = await startUpstream(upstreamHandler);
  const envoy = await standinFor(ep, up.url, cfg);
  cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());
  return { ep, up, envoy };
}

const kinds = (ms: ProcessingRequest[]) => ms.map((m) => m.request);

describe('mode_override', () => {
  // Events spaced out, so that most arrive after the response_headers answer.
  const sse = async (_r: unknown, res: import('node:http').ServerResponse) => {
    const body = 'data: 1\n\ndata: 2\n\ndata: 3\n\ndata: [DONE]\n\n';
    res.writeHead(200, { 'content-type': 'text/event-stream', 'content-length': String(body.length) });
    for (const e of body.split(/(?<=\n\n)/)) {
      await sleep(15);
      res.write(e);
    }
    res.end();
  };

  it('switches the response body to STREAMED when answered on response_headers', async () => {
    const { ep, envoy } = await setup(
      autoRespond((m) =>
        m.request === 'response_headers'
          ? { response_headers: { response: { header_mutation: { remove_headers: ['content-length'] } } }, mode_override: { response_body_mode: 'STREAMED' } }
          : undefined,
      ),
      { extProc: { processing_mode: BUFFERED, allow_mode_override: true } },
      sse,
    );
    const res = await request(`${envoy.url}/x`, { body: '{}' });
    expect(res.status).toBe(200);
    const rb = ep.streams[0]!.received.filter((m) => m.request === 'response_body');
    expect(rb.length).toBeGreaterThan(1);
    expect(Buffer.concat(rb.map(bodyOf)).toString()).toBe(res.text);
  });

  it('is ignored without allow_mode_override', async () => {
    const { ep, envoy } = await setup(
      autoRespond((m) => (m.request === 'response_headers' ? { response_headers: {}, mode_override: { response_body_mode: 'STREAMED' } } : undefined)),
      { extProc: { processing_mode: BUFFERED } },
      sse,
    );
    await request(`${envoy.url}/x`, { body: '{}' });
    expect(ep.streams[0]!.received.filter((m) => m.request === 'response_body')).toHaveLength(1);
  });

  it('takes body modes literally: an override on request_headers naming only the response stops request-body delivery', async () => {
    const { ep, up, envoy } = await setup(
      autoRespond((m) => (m.request === 'request_headers' ? { request_headers: {}, mode_override: { response_body_mode: 'BUFFERED' } } : undefined)),
      { extProc: { processing_mode: BUFFERED, allow_mode_override: true } },
    );
    const res = await request(`${envoy.url}/x`, { body: 'payload' });
    expect(res.status).toBe(200);
    expect(up.requests[0]!.body.toString()).toBe('payload');
    expect(kinds(ep.streams[0]!.received)).toEqual(['request_headers', 'response_headers', 'response_body']);
  });

  it('honours allowed_override_modes', async () => {
    const cfg = {
      extProc: {
        processing_mode: BUFFERED,
        allow_mode_override: true,
        // Only "response streamed, request body none" may be chosen.
        allowed_override_modes: [{ request_body_mode: 'NONE', response_header_mode: 'SEND', response_body_mode: 'STREAMED' }],
      },
    };
    const { ep, envoy } = await setup(
      autoRespond((m) => (m.request === 'response_headers' ? { response_headers: {}, mode_override: { response_body_mode: 'NONE' } } : undefined)),
      cfg,
      sse,
    );
    await request(`${envoy.url}/x`, { body: '{}' });
    // NONE is not in the list: the override is dropped, BUFFERED stays.
    expect(ep.streams[0]!.received.filter((m) => m.request === 'response_body')).toHaveLength(1);
    expect(envoy.stats.counter('ext_proc.mode_override_disallowed')).toBe(1);
  });
});

describe('spurious and missing answers', () => {
  it('answers 500 when the response kind does not match the message', async () => {
    const { ep, up, envoy } = await setup(async (s) => {
      await s.next();
      s.send({ response_headers: {} }); // wrong kind for request_headers
    });
    const res = await request(`${envoy.url}/x`, { body: 'b' });
    expect(res.status).toBe(500);
    expect(up.requests).toHaveLength(0);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.counter('ext_proc.spurious_msgs_received')).toBe(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('spurious_message');
    await until(() => ep.streams[0]!.cancelled);
  });

  it('treats a second answer to one message as spurious', async () => {
    const { envoy } = await setup(async (s) => {
      const h = await s.next();
      s.send(continueFor(h));
      s.send(continueFor(h));
      await autoRespond()(s);
    });
    const res = await request(`${envoy.url}/x`, { body: 'b' });
    expect(res.status).toBe(500);
  });

  it('uses status_on_error for errors', async () => {
    const { envoy } = await setup(
      async (s) => {
        await s.next();
        s.send({ request_body: {} });
      },
      { extProc: { processing_mode: BUFFERED, status_on_error: { code: 'ServiceUnavailable' } } },
    );
    expect((await request(`${envoy.url}/x`, { body: 'b' })).status).toBe(503);
  });

  it('ignores the processor from then on with failure_mode_allow', async () => {
    const { ep, up, envoy } = await setup(
      async (s) => {
        await s.next();
        s.send({ request_body: {} });
      },
      { extProc: { processing_mode: BUFFERED, failure_mode_allow: true } },
    );
    const res = await request(`${envoy.url}/x`, { body: 'payload' });
    expect(res.status).toBe(200);
    expect(up.requests[0]!.body.toString()).toBe('payload');
    expect(kinds(ep.streams[0]!.received)).toEqual(['request_headers']);
    expect(envoy.stats.counter('ext_proc.failure_mode_allowed')).toBe(1);
  });

  it('answers 504 when an answer takes longer than message_timeout', async () => {
    const { up, envoy } = await setup(
      async (s) => {
        await s.next(); // never answered
      },
      { extProc: { processing_mode: BUFFERED, message_timeout: '0.1s' } },
    );
    const t0 = Date.now();
    const res = await request(`${envoy.url}/x`, { body: 'b' });
    expect(res.status).toBe(504);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95);
    expect(up.requests).toHaveLength(0);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('ext_proc_error_per-message_timeout_exceeded');
  });

  it('continues unprocessed after a timeout with failure_mode_allow', async () => {
    const { up, envoy } = await setup(
      async (s) => {
        await s.next();
      },
      { extProc: { processing_mode: BUFFERED, message_timeout: '0.1s', failure_mode_allow: true } },
    );
    const res = await request(`${envoy.url}/x`, { body: 'payload' });
    expect(res.status).toBe(200);
    expect(up.requests[0]!.body.toString()).toBe('payload');
  });

  it('restarts the running timer once on override_message_timeout, within max_message_timeout', async () => {
    const cfg = { extProc: { processing_mode: BUFFERED, message_timeout: '0.1s', max_message_timeout: '1s' } };
    const { envoy } = await setup(async (s) => {
      const h = await s.next();
      s.send({ override_message_timeout: { seconds: 0, nanos: 400_000_000 } });
      await sleep(200); // beyond the 100 ms default, within the 400 ms override
      s.send(continueFor(h));
      await autoRespond()(s);
    }, cfg);
    expect((await request(`${envoy.url}/x`, { body: 'b' })).status).toBe(200);
    expect(envoy.stats.counter('ext_proc.override_message_timeout_received')).toBe(1);
  });

  it('ignores a second override and one above max_message_timeout', async () => {
    const cfg = { extProc: { processing_mode: BUFFERED, message_timeout: '0.1s', max_message_timeout: '1s' } };
    const { envoy } = await setup(async (s) => {
      await s.next();
      s.send({ override_message_timeout: { seconds: 5 } }); // above max: ignored
      s.send({ override_message_timeout: { nanos: 150_000_000 } });
      s.send({ override_message_timeout: { nanos: 900_000_000 } }); // second: ignored
    }, cfg);
    const t0 = Date.now();
    const res = await request(`${envoy.url}/x`, { body: 'b' });
    expect(res.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(600);
    expect(envoy.stats.counter('ext_proc.override_message_timeout_ignored')).toBe(2);
  });
});

describe('stream closed by the processor', () => {
  it('continues without ext_proc when the server closes with OK', async () => {
    const { ep, up, envoy } = await setup(async (s) => {
      await s.next();
      s.end();
    });
    const res = await request(`${envoy.url}/x`, { body: 'payload' });
    expect(res.status).toBe(200);
    expect(up.requests[0]!.body.toString()).toBe('payload');
    expect(kinds(ep.streams[0]!.received)).toEqual(['request_headers']);
  });

  it('answers 500 with the gRPC status in the details when it closes with an error', async () => {
    const { envoy } = await setup(async (s) => {
      await s.next();
      s.end({ code: grpc.status.INTERNAL, details: 'boom' });
    });
    const res = await request(`${envoy.url}/x`, { body: 'payload' });
    expect(res.status).toBe(500);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('ext_proc_error_gRPC_error_13{boom}');
  });

  it('continues on a gRPC error with failure_mode_allow, and fails when the server is unreachable', async () => {
    const { up, envoy } = await setup(
      async (s) => {
        await s.next();
        s.end({ code: grpc.status.UNAVAILABLE, details: 'down' });
      },
      { extProc: { processing_mode: BUFFERED, failure_mode_allow: true } },
    );
    expect((await request(`${envoy.url}/x`, { body: 'p' })).status).toBe(200);
    expect(up.requests).toHaveLength(1);

    // Unreachable processor, fail closed.
    const ep2 = await startScriptedExtProc(autoRespond());
    const address = ep2.address;
    await ep2.close();
    const envoy2 = await standinFor({ ...ep2, address }, up.url, { extProc: { processing_mode: BUFFERED } });
    cleanup.push(() => envoy2.close());
    expect((await request(`${envoy2.url}/x`, { body: 'p' })).status).toBe(500);
  });
});

describe('immediate_response', () => {
  it('sends the local reply with status, headers (per mutation rules), body and details; the upstream is not called', async () => {
    const { ep, up, envoy } = await setup(async (s) => {
      await s.next();
      s.send({
        immediate_response: {
          status: { code: 'TooManyRequests' },
          headers: { set_headers: [setHeader('retry-after', '3'), setHeader('x-envoy-blocked', '1')] },
          body: Buffer.from('{"error":"rate limited"}'),
          details: 'budget exceeded',
        },
      });
    });
    const res = await request(`${envoy.url}/x`, { body: 'b' });
    expect(res.status).toBe(429);
    expect(res.text).toBe('{"error":"rate limited"}');
    expect(res.headers['retry-after']).toBe('3');
    expect(res.headers['content-type']).toBe('text/plain');
    // x-envoy-* needs allow_envoy in the filter's mutation rules.
    expect(res.headers['x-envoy-blocked']).toBeUndefined();
    expect(up.requests).toHaveLength(0);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('budget_exceeded');
    await until(() => ep.streams[0]!.cancelled);
    // The answering filter does not process its own local reply.
    expect(kinds(ep.streams[0]!.received)).toEqual(['request_headers']);
  });

  it('defaults to 200 and replaces codes below 200', async () => {
    let n = 0;
    const { envoy } = await setup(async (s) => {
      await s.next();
      s.send({ immediate_response: n++ === 0 ? {} : { status: { code: 'Continue' } } });
    });
    expect((await request(`${envoy.url}/x`)).status).toBe(200);
    expect((await request(`${envoy.url}/x`)).status).toBe(200);
  });

  it('is a spurious message with disable_immediate_response', async () => {
    const { envoy } = await setup(
      async (s) => {
        await s.next();
        s.send({ immediate_response: { status: { code: 'Forbidden' } } });
      },
      { extProc: { processing_mode: BUFFERED, disable_immediate_response: true } },
    );
    expect((await request(`${envoy.url}/x`)).status).toBe(500);
    expect(envoy.stats.counter('ext_proc.spurious_msgs_received')).toBe(1);
  });

  it('is a local reply, so it skips the other ext_proc filters (skip_ext_proc_on_local_reply)', async () => {
    // Two HCM ext_proc filters A then B; B answers immediately. Since Envoy 1.34 (CVE-2025-30157)
    // a local reply never reaches an ext_proc server: A saw only request_headers, then its stream
    // was reset; the reply reaches the client untouched.
    const ep = await startScriptedExtProc(async (s, i) => {
      const role = i === 0 ? 'A' : 'B';
      for (;;) {
        const m = await s.next(5000).catch(() => null);
        if (!m) return;
        if (role === 'B' && m.request === 'request_headers') s.send({ immediate_response: { status: { code: 'Forbidden' }, body: Buffer.from('no') } });
        else if (role === 'A' && m.request === 'response_headers')
          s.send({ response_headers: { response: { header_mutation: { set_headers: [setHeader('x-seen-by', 'A')] } } } });
        else s.send(continueFor(m));
      }
    });
    const up = await startUpstream((_r, res) => json(res, 200, {}));
    const mode = { request_header_mode: 'SEND', response_header_mode: 'SEND', response_body_mode: 'BUFFERED' };
    const envoy = await standinFor(ep, up.url, { extProcs: [{ processing_mode: mode }, { processing_mode: mode }] });
    cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());
    const res = await request(`${envoy.url}/x`);
    expect(res.status).toBe(403);
    expect(res.text).toBe('no');
    expect(res.headers['x-seen-by']).toBeUndefined();
    const a = ep.streams[0]!;
    await until(() => a.cancelled);
    expect(kinds(a.received)).toEqual(['request_headers']);
  });
});

describe('buffer limits (BUFFERED)', () => {
  it('answers 413 for a request body over per_connection_buffer_limit_bytes', async () => {
    const { ep, up, envoy } = await setup(autoRespond(), { bufferLimit: 1000, extProc: { processing_mode: BUFFERED } });
    const res = await request(`${envoy.url}/x`, { parts: ['a'.repeat(600), 'b'.repeat(600)], partDelayMs: 30 });
    expect(res.status).toBe(413);
    expect(res.text).toBe('Payload Too Large');
    expect(up.requests).toHaveLength(0);
    // The 413 is a local reply: it skips ext_proc (skip_ext_proc_on_local_reply, Envoy >= 1.34).
    // The processor saw the request headers only, then its stream was reset.
    const s = ep.streams[0]!;
    await until(() => s.cancelled);
    expect(kinds(s.received)).toEqual(['request_headers']);
  });

  it('answers 500 for a response body over the limit', async () => {
    const { envoy } = await setup(autoRespond(), { bufferLimit: 1000, extProc: { processing_mode: BUFFERED } }, (_r, res) => {
      res.writeHead(200);
      res.write('x'.repeat(700));
      setTimeout(() => res.end('y'.repeat(700)), 20);
    });
    const res = await request(`${envoy.url}/x`, { body: 'small' });
    expect(res.status).toBe(500);
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.requests[0]!.responseCodeDetails).toBe('response_payload_too_large');
  });
});

describe('observability_mode', () => {
  it('sends without waiting for answers and closes the stream after deferred_close_timeout', async () => {
    const { ep, up, envoy } = await setup(async () => {}, {
      extProc: {
        observability_mode: true,
        deferred_close_timeout: '0.2s',
        processing_mode: { request_header_mode: 'SEND', request_body_mode: 'STREAMED', response_header_mode: 'SEND', response_body_mode: 'NONE' },
      },
    });
    const res = await request(`${envoy.url}/x`, { body: 'payload' });
    expect(res.status).toBe(200);
    expect(up.requests[0]!.body.toString()).toBe('payload');
    const s = ep.streams[0]!;
    await until(() => s.received.some((m) => m.request === 'response_headers'));
    for (const m of s.received) expect(m.observability_mode).toBe(true);
    expect(s.received[0]!.protocol_config).toBeUndefined();
    expect(Buffer.concat(s.received.filter((m) => m.request === 'request_body').map(bodyOf)).toString()).toBe('payload');
    expect(s.cancelled).toBe(false);
    await until(() => s.cancelled, 2000);
  });
});

describe('dynamic metadata', () => {
  it('merges only receiving namespaces, shows them in the access log, and forwards them back', async () => {
    const cfg: TestConfig = {
      extProc: {
        processing_mode: BUFFERED,
        metadata_options: { receiving_namespaces: { untyped: ['ai_gateway'] }, forwarding_namespaces: { untyped: ['ai_gateway', 'other'] } },
      },
      accessLogFormat: { tokens: '%DYNAMIC_METADATA(ai_gateway:output_tokens)%', provider: '%DYNAMIC_METADATA(ai_gateway:provider)%', other: '%DYNAMIC_METADATA(other:x)%' },
    };
    const { ep, envoy } = await setup(
      autoRespond((m) => {
        if (m.request === 'request_headers') return { request_headers: {}, dynamic_metadata: jsonToStruct({ ai_gateway: { provider: 'openai' }, other: { x: 1 } }) };
        if (m.request === 'response_body') return { response_body: {}, dynamic_metadata: jsonToStruct({ ai_gateway: { output_tokens: 42 } }) };
        return undefined;
      }),
      cfg,
    );
    await request(`${envoy.url}/x`, { body: 'b' });
    await envoy.stats.waitForRequests(1);
    expect(envoy.stats.accessLog[0]).toEqual({ tokens: 42, provider: 'openai', other: null });
    expect(envoy.stats.requests[0]!.dynamicMetadata).toEqual({ ai_gateway: { provider: 'openai', output_tokens: 42 } });
    const s = ep.streams[0]!;
    expect(metadataOf(s.received[1]!)).toEqual({ ai_gateway: { provider: 'openai' } });
    expect(eosOf(s.received[1]!)).toBe(true);
  });
});
