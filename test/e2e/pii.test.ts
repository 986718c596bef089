/**
 * The `pii` stage end to end: the official OpenAI and Anthropic SDKs through the Envoy stand-in
 * (shipped envoy.yaml) and the gateway with `pipeline.stages: [parse-request, pii]` (no options:
 * every built-in type tokenized, answers restored). The fake providers echo the prompt they
 * received, so the answer carries exactly the placeholders that left the mesh: the provider's
 * record must hold no planted value, and the client must read the originals back, streamed and
 * not. Also: overlapping entities, a value repeated many times, tool-call arguments streamed
 * piece by piece, block mode, a 5 MB prompt, and no planted value in any gateway log line.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { anthropicStream, openaiStream } from '../stages/pii-helpers.js';
import { startE2E, type E2E } from './helpers.js';

const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
/** Every value planted in these tests; none may reach a provider or a log line. */
const PLANTED = {
  email: 'jane.doe@acme-mail.com',
  phone: '+1 (415) 555-0132',
  card: '4111-1111-1111-1111',
  iban: 'GB82 WEST 1234 5698 7654 32',
  ssn: '123-45-6789',
  ip: '192.168.10.24',
  ipv6: '2001:db8::8a2e:370:7334',
  openaiKey: 'sk-proj-Abc123Def456Ghi789Jkl012Mno345Pqr678',
  aws: 'AKIAIOSFODNN7EXAMPLE',
  urlPassword: 'S3cretPass',
  jwt: JWT,
};
const values = Object.values(PLANTED);
/** Distinctive pieces too: a value must not leave even in part (e.g. a card without its dashes). */
const fragments = [...values, '4111111111111111', 'WEST12345698', 'Abc123Def456', 'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV'];

const PROMPT =
  `Mail ${PLANTED.email}, call ${PLANTED.phone}, card ${PLANTED.card}, IBAN ${PLANTED.iban}, SSN ${PLANTED.ssn}, ` +
  `hosts ${PLANTED.ip} and ${PLANTED.ipv6}, key ${PLANTED.openaiKey}, AWS ${PLANTED.aws}.`;
/** Entities inside or next to each other: a password inside a URL, a JWT inside a Bearer header, an email in a mailto. */
const OVERLAPS = `db postgres://admin:${PLANTED.urlPassword}@db.acme-mail.com:5432/app; Authorization: Bearer ${PLANTED.jwt}; mailto:${PLANTED.email}`;
const REPEATED = Array.from({ length: 400 }, (_, i) => `${i}: ${PLANTED.email}`).join('; ');

const config = { pipeline: { stages: ['parse-request', 'pii'] } };

function expectClean(text: string): void {
  for (const v of fragments) expect(text, 'a planted value reached the provider').not.toContain(v);
}

/** Every log line of every gateway these tests started, checked at the end. */
const gateways: E2E[] = [];

describe('pii through Envoy + gateway: OpenAI SDK', () => {
  let e: E2E;
  let client: OpenAI;
  beforeAll(async () => {
    e = await startE2E('openai', config);
    gateways.push(e);
  });
  afterAll(() => e.close());
  beforeEach(() => {
    e.provider.reset();
    client = new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
  });

  const ask = (content: string) => client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content }] });
  const askStream = async (content: string) => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content }], stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    return text;
  };

  it('non-streaming: the provider sees placeholders, the client reads the originals', async () => {
    const res = await ask(PROMPT);
    expectClean(e.provider.requests[0]!.text);
    expect(e.provider.requests[0]!.text).toContain('<EMAIL_1>');
    expect(res.choices[0]!.message.content).toBe(`This is a fake openai reply to: ${PROMPT}`);
  });

  it('streaming: restored across the word-per-delta stream', async () => {
    const text = await askStream(PROMPT);
    expectClean(e.provider.requests[0]!.text);
    expect(text).toBe(`This is a fake openai reply to: ${PROMPT}`);
  });

  it('streaming stays streaming: restored events reach the client while the provider holds the rest', async () => {
    e.provider.script({ holdAfterChunks: 4 });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `Mail ${PLANTED.email} now` }], stream: true });
    const it = stream[Symbol.asyncIterator]();
    let text = '';
    for (let i = 0; i < 3; i++) text += (await it.next()).value?.choices[0]?.delta?.content ?? '';
    expect(e.provider.responses[0]!.outcome).toBe('pending');
    e.provider.release();
    for (let r = await it.next(); !r.done; r = await it.next()) text += r.value.choices[0]?.delta?.content ?? '';
    expect(text).toBe(`This is a fake openai reply to: Mail ${PLANTED.email} now`);
  });

  it('overlapping entities, streamed and not', async () => {
    expect((await ask(OVERLAPS)).choices[0]!.message.content).toBe(`This is a fake openai reply to: ${OVERLAPS}`);
    expect(await askStream(OVERLAPS)).toBe(`This is a fake openai reply to: ${OVERLAPS}`);
    for (const r of e.provider.requests) expectClean(r.text);
  });

  it('a value repeated 400 times becomes one placeholder, restored everywhere', async () => {
    const res = await ask(REPEATED);
    const sent = e.provider.requests[0]!.text;
    expectClean(sent);
    expect(sent.split('<EMAIL_1>').length - 1).toBe(400);
    expect(sent).not.toContain('<EMAIL_2>');
    expect(res.choices[0]!.message.content).toBe(`This is a fake openai reply to: ${REPEATED}`);
  });

  it('a placeholder-looking string typed by the user stays literal', async () => {
    const prompt = `Is <EMAIL_1> a template? Mine is ${PLANTED.email}`;
    const res = await ask(prompt);
    expect(e.provider.requests[0]!.text).toContain('Is <EMAIL_1> a template? Mine is <EMAIL_2>');
    expect(res.choices[0]!.message.content).toBe(`This is a fake openai reply to: ${prompt}`);
  });

  it('tool-call arguments streamed piece by piece are restored into valid JSON', async () => {
    const args = ['{"to":"<EMA', 'IL_1>","n', 'ote":"hi <EMAIL_1', '>"}'];
    e.provider.script({ chunks: openaiStream(['Sending <', 'EMAIL_1>'], args).split(/(?<=\n\n)/) });
    const stream = client.chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: `send to ${PLANTED.email}` }], stream: true });
    const final = await stream.finalChatCompletion();
    expectClean(e.provider.requests[0]!.text);
    const msg = final.choices[0]!.message;
    expect(msg.content).toBe(`Sending ${PLANTED.email}`);
    expect(JSON.parse(msg.tool_calls![0]!.function.arguments)).toEqual({ to: PLANTED.email, note: `hi ${PLANTED.email}` });
  });

  it('a 5 MB prompt leaves redacted and comes back restored', async () => {
    const filler = 'The quarterly report lists revenue by region and product line without personal data. ';
    const parts: string[] = [];
    let size = 0;
    for (let i = 0; size < 5 * 1024 * 1024; i++) {
      const piece = i % 500 === 0 ? `Contact ${PLANTED.email} or ${PLANTED.phone}. ` : filler;
      parts.push(piece);
      size += piece.length;
    }
    const prompt = parts.join('');
    const res = await ask(prompt);
    const sent = e.provider.requests[0]!.text;
    expect(sent.length).toBeGreaterThan(5 * 1024 * 1024 - 100_000);
    expectClean(sent);
    expect(res.choices[0]!.message.content).toBe(`This is a fake openai reply to: ${prompt.trim()}`);
  }, 60_000);
});

describe('pii through Envoy + gateway: Anthropic SDK', () => {
  let e: E2E;
  let client: Anthropic;
  beforeAll(async () => {
    e = await startE2E('anthropic', config);
    gateways.push(e);
  });
  afterAll(() => e.close());
  beforeEach(() => {
    e.provider.reset();
    client = new Anthropic({ baseURL: e.envoy.url, apiKey: 'sk-ant-test', maxRetries: 0 });
  });

  const textOf = (m: Anthropic.Message) => m.content.map((b) => (b.type === 'text' ? b.text : '')).join('');

  it('non-streaming, with a system prompt: placeholders out, originals back', async () => {
    const msg = await client.messages.create({ model: 'claude-sonnet-4', max_tokens: 4000, system: `Operator contact: ${PLANTED.email}`, messages: [{ role: 'user', content: PROMPT }] });
    const sent = e.provider.requests[0]!.text;
    expectClean(sent);
    expect(sent).toContain('Operator contact: <EMAIL_1>');
    expect(textOf(msg)).toBe(`This is a fake anthropic reply to: ${PROMPT}`);
  });

  it('streaming: text deltas restored', async () => {
    const stream = client.messages.stream({ model: 'claude-sonnet-4', max_tokens: 4000, messages: [{ role: 'user', content: PROMPT }] });
    let streamed = '';
    stream.on('text', (t) => (streamed += t));
    const final = await stream.finalMessage();
    expectClean(e.provider.requests[0]!.text);
    expect(streamed).toBe(`This is a fake anthropic reply to: ${PROMPT}`);
    expect(textOf(final)).toBe(streamed);
  });

  it('overlapping entities and a repeated value', async () => {
    for (const prompt of [OVERLAPS, REPEATED]) {
      e.provider.reset();
      const msg = await client.messages.create({ model: 'claude-sonnet-4', max_tokens: 20000, messages: [{ role: 'user', content: prompt }] });
      expectClean(e.provider.requests[0]!.text);
      expect(textOf(msg)).toBe(`This is a fake anthropic reply to: ${prompt}`);
    }
  });

  it('tool_use input streamed as partial JSON is restored', async () => {
    e.provider.script({ chunks: anthropicStream(['Sending <EM', 'AIL_1>'], ['{"to": "<EMAIL', '_1>", "ssn": "<SSN_1>"}']).split(/(?<=\n\n)/) });
    const stream = client.messages.stream({ model: 'claude-sonnet-4', max_tokens: 200, messages: [{ role: 'user', content: `send ${PLANTED.ssn} to ${PLANTED.email}` }] });
    const final = await stream.finalMessage();
    expectClean(e.provider.requests[0]!.text);
    expect(final.content[0]).toMatchObject({ type: 'text', text: `Sending ${PLANTED.email}` });
    expect(final.content[1]).toMatchObject({ type: 'tool_use', input: { to: PLANTED.email, ssn: PLANTED.ssn } });
  });
});

describe('pii block mode through Envoy + gateway', () => {
  let oa: E2E;
  let an: E2E;
  const blockConfig = { pipeline: { stages: ['parse-request', { name: 'pii', entities: { CREDIT_CARD: 'block', SSN: 'block' } }] } };
  beforeAll(async () => {
    [oa, an] = await Promise.all([startE2E('openai', blockConfig), startE2E('anthropic', blockConfig)]);
    gateways.push(oa, an);
  });
  afterAll(() => Promise.all([oa.close(), an.close()]));

  it('OpenAI SDK: BadRequestError naming the types; nothing reached the provider', async () => {
    const client = new OpenAI({ baseURL: `${oa.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: PROMPT }] }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const message = (err as Error).message;
    expect(message).toContain('request contains data the gateway does not send: CREDIT_CARD, SSN');
    for (const v of values) expect(message).not.toContain(v);
    expect(oa.provider.requests).toHaveLength(0);
  });

  it('Anthropic SDK: BadRequestError naming the types', async () => {
    const client = new Anthropic({ baseURL: an.envoy.url, apiKey: 'sk-ant-test', maxRetries: 0 });
    const err = await client.messages.create({ model: 'claude-sonnet-4', max_tokens: 10, messages: [{ role: 'user', content: `card ${PLANTED.card}` }] }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect((err as Error).message).toContain('request contains data the gateway does not send: CREDIT_CARD');
    expect((err as Error).message).not.toContain(PLANTED.card);
    expect(an.provider.requests).toHaveLength(0);
  });

  it('types without block are still tokenized', async () => {
    const client = new OpenAI({ baseURL: `${oa.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const res = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `mail ${PLANTED.email}` }] });
    expect(oa.provider.requests[0]!.text).toContain('<EMAIL_1>');
    expect(res.choices[0]!.message.content).toBe(`This is a fake openai reply to: mail ${PLANTED.email}`);
  });
});

describe('pii: the gateway logs', () => {
  it('no log line of any gateway above carries a planted value, and PII lines carry counts', () => {
    const lines = gateways.flatMap((g) => g.gateway.logs.map((l) => JSON.stringify(l)));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) for (const v of fragments) expect(line).not.toContain(v);
    expect(lines.some((l) => l.includes('pii entities replaced') && l.includes('EMAIL:'))).toBe(true);
    expect(lines.some((l) => l.includes('pii blocked request') && l.includes('CREDIT_CARD'))).toBe(true);
  });
});
