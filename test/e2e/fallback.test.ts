/**
 * Fallback chains carried out by Envoy (stand-in running the bootstrap rendered from the config):
 * the four-step chain claude-opus-4 (Anthropic) → gpt-4o (OpenAI) → claude-sonnet-4 (Anthropic) →
 * mistral-large (Mistral), where the first step, then the first two, fail with 429 / 503 / 529 /
 * reset / per-try timeout, streamed and not, through the official OpenAI SDK; a 400 that does not
 * fall over; cooldown skipping a cooled step on the next request; a stream cut after its headers
 * ending with an error event; and two gateway replicas, the attempts on the other one.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { faults, type Behaviour } from '../fakes/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { routingConfigRaw, splitAttemptCluster, startFakes, startRoutingE2E, type Fakes, type RoutingE2E } from './routingHelpers.js';

const messages = [{ role: 'user' as const, content: 'Tell me a joke' }];
/** Cooldown bounded to 1 ms: each case starts on a fresh chain (the cooldown test uses the defaults). */
const noCooldown = routingConfigRaw({
  pipeline: { stages: ['parse-request', 'route', 'translate'].map((n) => (n === 'route' ? { name: 'route', cooldown: { maxMs: 1 } } : n)) },
});
(noCooldown['routes'] as Record<string, unknown>[]).at(-1)!['perTryTimeoutMs'] = 400;

const failures: [string, () => Behaviour][] = [
  ['429', () => faults.rateLimited(1)],
  ['503', () => faults.status(503)],
  ['529', () => faults.overloaded()],
  ['reset', () => faults.resetBeforeHeaders()],
  ['per-try timeout', () => faults.slowFirstByte(1500)],
];

let fakes: Fakes;
let e: RoutingE2E;
let client: OpenAI;
beforeAll(async () => {
  fakes = await startFakes();
  e = await startRoutingE2E(noCooldown, { fakes });
  client = new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-client', maxRetries: 0 });
});
afterAll(async () => {
  await e.close();
  await Promise.all(Object.values(fakes).map((f) => f.close()));
});
beforeEach(() => {
  for (const f of Object.values(fakes)) f.reset();
});

async function ask(stream: boolean): Promise<{ text: string; headers: Headers }> {
  if (!stream) {
    const { data, response } = await client.chat.completions.create({ model: 'claude-opus-4', messages }).withResponse();
    return { text: data.choices[0]!.message.content ?? '', headers: response.headers };
  }
  const { data, response } = await client.chat.completions.create({ model: 'claude-opus-4', messages, stream: true }).withResponse();
  let text = '';
  for await (const c of data) text += c.choices[0]?.delta?.content ?? '';
  return { text, headers: response.headers };
}

describe.each([false, true])('four-step chain (stream: %s)', (stream) => {
  it.each(failures)('step 1 fails with %s: gpt-4o serves, the client gets OpenAI’s answer and x-gateway-attempts 2', async (_name, fault) => {
    fakes.anthropic.script(fault());
    const { text, headers } = await ask(stream);
    expect(text).toContain('fake openai reply to: Tell me a joke');
    expect(headers.get('x-gateway-model')).toBe('gpt-4o');
    expect(headers.get('x-gateway-attempts')).toBe('2');
    expect(fakes.openai.requests).toHaveLength(1);
  });

  it.each(failures)('steps 1 and 2 fail with %s: claude-sonnet-4 serves, translated for the OpenAI client', async (_name, fault) => {
    fakes.anthropic.script(fault()); // step 1; step 3 (same fake) answers normally
    fakes.openai.script(fault());
    const { text, headers } = await ask(stream);
    expect(text).toContain('fake anthropic reply to: Tell me a joke');
    expect(headers.get('x-gateway-model')).toBe('claude-sonnet-4');
    expect(headers.get('x-gateway-attempts')).toBe('3');
    expect(fakes.anthropic.requests.map((r) => (r.json as { model: string }).model)).toEqual(['claude-opus-4-20250514', 'claude-sonnet-4-20250514']);
  });
});

describe('what does not fall over', () => {
  it('a 400 from the first step reaches the client (in its dialect) and no other step is tried', async () => {
    fakes.anthropic.script({ error: { status: 400, type: 'invalid_request_error', message: 'max_tokens: too large' } });
    const err = await client.chat.completions.create({ model: 'claude-opus-4', messages }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('max_tokens: too large');
    expect(fakes.openai.requests).toHaveLength(0);
    expect(fakes.anthropic.requests).toHaveLength(1);
  });

  it('every step failing: the client gets a 503 in its dialect after four attempts', async () => {
    fakes.anthropic.script(faults.status(503), faults.status(503));
    fakes.openai.script(faults.status(503));
    fakes.mistral.script(faults.status(503));
    const err = await client.chat.completions.create({ model: 'claude-opus-4', messages }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(503);
    expect(fakes.mistral.requests).toHaveLength(1);
  });

  it('a stream the provider stops after its headers cannot fall over: it ends with an error event, never a silent truncation', async () => {
    fakes.anthropic.script(faults.stopAfterChunks(3));
    const stream = await client.chat.completions.create({ model: 'claude-opus-4', messages, stream: true });
    const err = await (async () => {
      for await (const _ of stream) {
        // drain
      }
    })().catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(String((err as Error).message)).toContain('before the answer was complete');
    expect(fakes.openai.requests).toHaveLength(0);
  });
});

describe('cooldown', () => {
  it('a step that answered 429 is skipped by the next request (shared cooldown state, Envoy cluster per start step)', async () => {
    const c = await startRoutingE2E(routingConfigRaw(), { fakes });
    try {
      const oa = new OpenAI({ baseURL: `${c.envoy.url}/v1`, apiKey: 'sk-client', maxRetries: 0 });
      fakes.anthropic.script(faults.rateLimited(30));
      const first = await oa.chat.completions.create({ model: 'claude-opus-4', messages }).withResponse();
      expect(first.response.headers.get('x-gateway-attempts')).toBe('2');
      const second = await oa.chat.completions.create({ model: 'claude-opus-4', messages }).withResponse();
      expect(second.response.headers.get('x-gateway-model')).toBe('gpt-4o');
      expect(second.response.headers.get('x-gateway-attempts')).toBe('1');
      expect(fakes.anthropic.requests).toHaveLength(1); // the cooled step was not paid again
      expect(c.envoy.stats.requests.at(-1)!.upstreamCluster).toBe('chain_main_from_1');
    } finally {
      await c.close();
    }
  });
});

describe('two gateway replicas', () => {
  let other: TestGateway;
  let two: RoutingE2E;
  beforeAll(async () => {
    other = await startTestGateway(noCooldown);
    const first = await startTestGateway(noCooldown);
    two = await startRoutingE2E(noCooldown, {
      fakes,
      bootstrap: splitAttemptCluster,
      extProcAddress: null,
      extraEndpoints: { ext_proc: `127.0.0.1:${first.port}`, ext_proc_attempt: `127.0.0.1:${other.port}` },
    });
    // startRoutingE2E started its own gateway too; the stand-in talks to `first` and `other` only.
    Object.assign(two, { routerGateway: first });
  });
  afterAll(async () => {
    await two.close();
    await other.close(200);
    await (two as unknown as { routerGateway: TestGateway }).routerGateway.close(200);
  });

  it('router stream on one replica, attempts on the other: the fallback is translated from carried metadata alone', async () => {
    fakes.anthropic.script(faults.status(503));
    const anthropic = new Anthropic({ baseURL: two.envoy.url, apiKey: 'sk-client', maxRetries: 0 });
    // An Anthropic client whose chain falls over to OpenAI: the attempt replica must know the
    // client's dialect without the router exchange.
    const { data, response } = await anthropic.messages.create({ model: 'claude-opus-4', max_tokens: 100, messages }).withResponse();
    expect(data.type).toBe('message');
    expect(data.content[0]).toMatchObject({ type: 'text', text: expect.stringContaining('fake openai reply') });
    expect(response.headers.get('x-gateway-model')).toBe('gpt-4o');
    expect(response.headers.get('x-gateway-attempts')).toBe('2');
    const routerGw = (two as unknown as { routerGateway: TestGateway }).routerGateway;
    const attemptsOn = (g: TestGateway) => g.logs.filter((l) => l['msg'] === 'decided' && l['filter'] === 'attempt').length;
    expect(attemptsOn(other)).toBeGreaterThan(0);
    expect(attemptsOn(routerGw)).toBe(0);
    expect(routerGw.logs.some((l) => l['msg'] === 'decided' && l['kind'] === 'request_body' && l['filter'] === undefined)).toBe(true);
  });

  it('an OpenAI client whose first try was rewritten to /v1/messages: the second try still knows its dialect (carried, not the path)', async () => {
    fakes.anthropic.script(faults.rateLimited(1));
    const oa = new OpenAI({ baseURL: `${two.envoy.url}/v1`, apiKey: 'sk-client', maxRetries: 0 });
    const { data, response } = await oa.chat.completions.create({ model: 'claude-opus-4', messages }).withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]!.message.content).toContain('fake openai reply');
    expect(response.headers.get('x-gateway-attempts')).toBe('2');
    expect(fakes.openai.requests[0]!.path).toBe('/v1/chat/completions');
    expect(fakes.openai.requests[0]!.json).toMatchObject({ model: 'gpt-4o', messages });
  });
});

describe('a context-length error moves to a step with a larger window', () => {
  // gpt-4o (128k) first, claude-opus-4 (200k) after it.
  const raw = routingConfigRaw({
    pipeline: { stages: ['parse-request', { name: 'route', cooldown: { maxMs: 1 } }, 'translate'] },
    routes: [{ name: 'main', model: 'gpt-4o', fallback: ['claude-opus-4'], retryOn: [429, 500, 502, 503, 504, 529, 'connect-failure', 'reset'] }],
  });
  let ctx: RoutingE2E;
  beforeAll(async () => {
    ctx = await startRoutingE2E(raw, { fakes });
  });
  afterAll(() => ctx.close());

  it.each([false, true])('OpenAI says context_length_exceeded: Claude, with the larger window, serves (stream: %s)', async (stream) => {
    fakes.openai.script({ error: { status: 400, type: 'invalid_request_error', code: 'context_length_exceeded', message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens." } });
    const oa = new OpenAI({ baseURL: `${ctx.envoy.url}/v1`, apiKey: 'sk-client', maxRetries: 0 });
    let text = '';
    let headers: Headers;
    if (stream) {
      const { data, response } = await oa.chat.completions.create({ model: 'gpt-4o', messages, stream: true }).withResponse();
      for await (const c of data) text += c.choices[0]?.delta?.content ?? '';
      headers = response.headers;
    } else {
      const { data, response } = await oa.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      text = data.choices[0]!.message.content ?? '';
      headers = response.headers;
    }
    expect(text).toContain('fake anthropic reply');
    expect(headers.get('x-gateway-model')).toBe('claude-opus-4');
    expect(headers.get('x-gateway-attempts')).toBe('2');
    expect(fakes.openai.requests).toHaveLength(1);
    expect(fakes.anthropic.requests).toHaveLength(1);
  });

  it('any other 400 still reaches the client unchanged, and the step is not cooled', async () => {
    fakes.openai.script({ error: { status: 400, type: 'invalid_request_error', message: 'temperature: must be at most 2' } });
    const oa = new OpenAI({ baseURL: `${ctx.envoy.url}/v1`, apiKey: 'sk-client', maxRetries: 0 });
    const err = await oa.chat.completions.create({ model: 'gpt-4o', messages }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(fakes.anthropic.requests).toHaveLength(0);
    const ok = await oa.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(ok.response.headers.get('x-gateway-model')).toBe('gpt-4o');
  });
});
