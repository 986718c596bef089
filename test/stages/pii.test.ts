/**
 * The `pii` stage in process (test/helpers/harness.ts): the request leaves redacted with a
 * right content-length; answers come back restored — JSON of both dialects, and SSE of both
 * dialects with placeholders split at every byte and every delta position, tool-call arguments
 * included; invented placeholders and placeholder-looking prompt text stay as they are; block
 * mode names types only; nothing is asked of the response path when no placeholder was issued.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../extproc/config/load.js';
import { piiOptionsSchema } from '../../extproc/pii/index.js';
import { callerIdentity } from '../../extproc/stages/identity.js';
import { routeChoice } from '../../extproc/stages/route.js';
import { parseRequestStage } from '../../extproc/stages/parseRequest.js';
import { piiResponseCounts, piiSessionSlot, piiStage } from '../../extproc/stages/pii.js';
import { buildPipelines, builtinStages, stageCheck } from '../../extproc/stages/registry.js';
import { piiContribution } from '../../extproc/usage/contributions.js';
import { pipelineOf, runScript, type Script } from '../helpers/harness.js';
import { anthropicStream, cut, openaiStream, reassembleAnthropic, reassembleOpenAI, responseBytes } from './pii-helpers.js';

const EMAIL = 'jane.doe@acme-mail.com';
/** A value with a double quote: restored into JSON text it must become `\"`. */
const CODE = 'proj"falcon';
const options = { custom: [{ name: 'CODENAME', pattern: 'proj"[a-z]+' }] };
const pipe = (o: Record<string, unknown> = options) =>
  pipelineOf([parseRequestStage.create(undefined as never, {} as never), piiStage.create(piiOptionsSchema.parse(o), {} as never)]);

const openaiBody = (text: string) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: text }] });
const anthropicBody = (text: string) => ({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: text }] });
const PROMPT = `Write to ${EMAIL} about ${CODE}, please.`;
const json = { 'content-type': 'application/json' };
const eventStream = { 'content-type': 'text/event-stream' };
const anthropicPath = { ':path': '/v1/messages' };

/** The answer text the model writes, with this request's placeholders. */
const ANSWER = 'Sent to <EMAIL_1> re <CODENAME_1>.';
const RESTORED = `Sent to ${EMAIL} re ${CODE}.`;
const ARGS = '{"to":"<EMAIL_1>","code":"<CODENAME_1>"}';
const RESTORED_ARGS = { to: EMAIL, code: CODE };

async function run(script: Script, o?: Record<string, unknown>) {
  const r = await runScript(pipe(o), script);
  return r;
}

describe('pii stage: request', () => {
  it('the body that leaves has placeholders, a matching content-length, counts in slot and metadata', async () => {
    const r = await run({ requestBody: openaiBody(PROMPT) });
    const sent = r.requestBody!.body!;
    expect(sent.toString()).not.toContain(EMAIL);
    expect(sent.toString()).not.toContain('falcon');
    expect(JSON.parse(sent.toString()).messages[0].content).toBe('Write to <EMAIL_1> about <CODENAME_1>, please.');
    expect(r.requestBody!.setHeaders.get('content-length')).toBe(String(sent.length));
    expect(r.requestBody!.removeHeaders.has('accept-encoding')).toBe(true);
    expect(r.requestBody!.metadata.get('ai_gateway')).toEqual({ pii_entities: { CODENAME: 1, EMAIL: 1 } });
    expect(r.x.get(piiContribution)).toEqual({ CODENAME: 1, EMAIL: 1 });
    expect(r.x.get(piiSessionSlot)!.table.size).toBe(2);
    expect(r.x.responseBodyRequested).toBe(true);
    expect(JSON.stringify(r.logs)).not.toContain(EMAIL);
  });

  it('a request without PII is untouched and asks nothing of the response path', async () => {
    const r = await run({ requestBody: openaiBody('What is the capital of France?') });
    expect(r.requestBody!.body).toBeUndefined();
    expect(r.requestBody!.isEmpty).toBe(true);
    expect(r.x.responseBodyRequested).toBe(false);
  });

  it('restore: false redacts but does not ask for the answer', async () => {
    const r = await run({ requestBody: openaiBody(PROMPT) }, { ...options, restore: false });
    expect(r.requestBody!.body!.toString()).toContain('<EMAIL_1>');
    expect(r.x.responseBodyRequested).toBe(false);
  });

  it('the caller from the identity slot selects rules', async () => {
    const o = { rules: [{ match: { caller: 'spiffe://a/b' }, entities: { EMAIL: 'allow' } }] };
    const p = pipelineOf([
      { name: 'id', failure: 'open', requestHeaders: (x) => x.set(callerIdentity, { caller: 'spiffe://a/b' } as never) },
      piiStage.create(piiOptionsSchema.parse(o), {} as never),
    ]);
    const allowed = await runScript(p, { requestBody: openaiBody(PROMPT) });
    expect(allowed.requestBody!.body).toBeUndefined(); // EMAIL allowed for this caller, nothing else found
    const other = await runScript(pipe(o), { requestBody: openaiBody(PROMPT) });
    expect(other.requestBody!.body!.toString()).toContain('<EMAIL_1>');
  });

  it('the route chosen by an earlier routing stage selects rules', async () => {
    const o = { rules: [{ match: { route: 'internal' }, entities: { CODENAME: 'allow', EMAIL: 'redact' } }], custom: options.custom };
    const p = pipelineOf([
      { name: 'route', failure: 'open', requestBody: (x) => x.set(routeChoice, { route: 'internal' } as never) },
      piiStage.create(piiOptionsSchema.parse(o), {} as never),
    ]);
    const r = await runScript(p, { requestBody: openaiBody(PROMPT) });
    expect(JSON.parse(r.requestBody!.body!.toString()).messages[0].content).toBe(`Write to <EMAIL> about ${CODE}, please.`);
    expect(r.x.responseBodyRequested).toBe(false); // redact: nothing to restore
  });

  it('block mode: 400 in the OpenAI shape naming the types, never a value', async () => {
    const card = '4111 1111 1111 1111';
    const r = await run({ requestBody: openaiBody(`card ${card}, mail ${EMAIL}`) }, { entities: { CREDIT_CARD: 'block', EMAIL: 'block' } });
    expect(r.reply!.status).toBe(400);
    expect(r.reply!.details).toBe('gateway_pii_blocked');
    const body = JSON.parse(String(r.reply!.body));
    expect(body.error.message).toBe('request contains data the gateway does not send: CREDIT_CARD, EMAIL');
    expect(String(r.reply!.body)).not.toContain('4111');
    expect(String(r.reply!.body)).not.toContain(EMAIL);
    expect(JSON.stringify(r.logs)).not.toContain('4111');
  });

  it('block mode on /v1/messages answers in the Anthropic shape', async () => {
    const r = await run({ requestHeaders: anthropicPath, requestBody: anthropicBody(`my SSN is 123-45-6789`) }, { entities: { SSN: 'block' } });
    expect(r.reply!.status).toBe(400);
    expect(JSON.parse(String(r.reply!.body))).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: 'request contains data the gateway does not send: SSN' } });
  });

  it('an unknown path gets every string but model redacted', async () => {
    const r = await run({ requestHeaders: { ':path': '/v1/completions' }, requestBody: { model: 'gpt-3.5-turbo-instruct', prompt: `mail ${EMAIL}`, suffix: ['x', { deep: EMAIL }] } });
    expect(JSON.parse(r.requestBody!.body!.toString())).toEqual({ model: 'gpt-3.5-turbo-instruct', prompt: 'mail <EMAIL_1>', suffix: ['x', { deep: '<EMAIL_1>' }] });
  });

  it('embeddings input is redacted too (every string but model)', async () => {
    const r = await run({ requestHeaders: { ':path': '/v1/embeddings' }, requestBody: { model: 'text-embedding-3-small', input: [`mail ${EMAIL}`, 'plain'] } });
    const sent = JSON.parse(r.requestBody!.body!.toString());
    expect(sent).toEqual({ model: 'text-embedding-3-small', input: ['mail <EMAIL_1>', 'plain'] });
    expect(r.x.responseBodyRequested).toBe(false);
  });

  it('a detection failure refuses the request (500) and its log line names no value', async () => {
    // A body whose first reading throws an error quoting the data, as a parser error would
    // (later readings, such as the pipeline serialising it after a failure open, succeed).
    const poisoned = (): Record<string, unknown> => {
      let armed = true;
      const trip = (): void => {
        if (!armed) return;
        armed = false;
        throw new SyntaxError(`Unexpected token in "${EMAIL}"`);
      };
      return new Proxy(openaiBody('plain text') as Record<string, unknown>, {
        getOwnPropertyDescriptor(t, k) {
          trip();
          return Reflect.getOwnPropertyDescriptor(t, k);
        },
        get(t, k) {
          if (k === 'messages') trip();
          return Reflect.get(t, k);
        },
      });
    };
    const build = (o: Record<string, unknown>) =>
      pipelineOf([{ name: 'poison', failure: 'open', requestBody: (x) => x.editRequest(() => poisoned()) }, piiStage.create(piiOptionsSchema.parse(o), {} as never)]);
    const closed = await runScript(build({}), { requestBody: openaiBody(PROMPT) });
    expect(closed.reply!.status).toBe(500);
    expect(closed.reply!.details).toBe('gateway_stage_failed_pii');
    expect(JSON.stringify(closed.logs)).toContain('pii detection failed (SyntaxError)');
    expect(JSON.stringify(closed.logs)).not.toContain(EMAIL);
    expect(String(closed.reply!.body)).not.toContain(EMAIL);
    // failure: open is the explicit opt-out: the request goes on, the log still names no value.
    const open = await runScript(build({ failure: 'open' }), { requestBody: openaiBody(PROMPT) });
    expect(open.reply).toBeUndefined();
    expect(JSON.stringify(open.logs)).toContain('failing open');
    expect(JSON.stringify(open.logs)).not.toContain(EMAIL);
  });

  it('fails closed by default; a config entry may choose failure: open', () => {
    const build = (entry: unknown) =>
      buildPipelines(parseConfig({ pipeline: { stages: ['parse-request', entry] } }, [stageCheck(builtinStages)]), builtinStages, {
        log: {} as never,
        services: { shared: (_k: string, _c: unknown, create: () => unknown) => create() } as never,
      }).router.stages[1]!;
    expect(build('pii')).toMatchObject({ name: 'pii', failure: 'closed', responseBodyUse: 'on-demand', rewritesEvents: true });
    expect(build({ name: 'pii', failure: 'open', timeoutMs: 500 })).toMatchObject({ name: 'pii', failure: 'open', timeoutMs: 500 });
  });
});

describe('pii stage: JSON answers', () => {
  it('OpenAI: content and tool-call arguments restored, content-length set', async () => {
    const answer = {
      id: 'x',
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: ANSWER, tool_calls: [{ id: 'c', type: 'function', function: { name: 'send', arguments: ARGS } }] }, finish_reason: 'stop' }],
    };
    const chunk = JSON.stringify(answer);
    const r = await run({ requestBody: openaiBody(PROMPT), responseHeaders: { ...json, 'content-length': String(chunk.length) }, responseChunks: [chunk] });
    const out = r.responseBody[0]!;
    const got = JSON.parse(out.body!.toString());
    expect(got.choices[0].message.content).toBe(RESTORED);
    expect(JSON.parse(got.choices[0].message.tool_calls[0].function.arguments)).toEqual(RESTORED_ARGS);
    expect(out.setHeaders.get('content-length')).toBe(String(out.body!.length));
  });

  it('Anthropic: text blocks and tool_use input restored', async () => {
    const answer = {
      id: 'msg',
      type: 'message',
      role: 'assistant',
      content: [
        { type: 'text', text: ANSWER },
        { type: 'tool_use', id: 't', name: 'send', input: { to: '<EMAIL_1>', nested: ['<CODENAME_1>'] } },
      ],
    };
    const r = await run({ requestHeaders: anthropicPath, requestBody: anthropicBody(PROMPT), responseHeaders: json, responseChunks: [JSON.stringify(answer)] });
    const out = r.responseBody[0]!;
    const got = JSON.parse(out.body!.toString());
    expect(got.content[0].text).toBe(RESTORED);
    expect(got.content[1].input).toEqual({ to: EMAIL, nested: [CODE] });
    expect(out.setHeaders.get('content-length')).toBe(String(out.body!.length));
  });

  it('a JSON answer arriving in pieces is held and answered once whole', async () => {
    const answer = JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: ANSWER } }] });
    const chunks = [answer.slice(0, 40), answer.slice(40)];
    const r = await run({ requestBody: openaiBody(PROMPT), responseHeaders: json, responseChunks: chunks });
    expect(r.responseBody[0]!.body!.length).toBe(0);
    expect(JSON.parse(r.responseBody[1]!.body!.toString()).choices[0].message.content).toBe(RESTORED);
  });

  it('an answer without placeholders passes through unchanged', async () => {
    const answer = JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'nothing here' } }] });
    const r = await run({ requestBody: openaiBody(PROMPT), responseHeaders: json, responseChunks: [answer] });
    expect(r.responseBody[0]!.isEmpty).toBe(true);
  });

  it('a placeholder the model invented or mangled stays as it is', async () => {
    const text = 'Known <EMAIL_1>, invented <EMAIL_9>, mangled <EMAIL 1> and <PHONE_1>.';
    const r = await run({ requestBody: openaiBody(PROMPT), responseHeaders: json, responseChunks: [JSON.stringify({ choices: [{ index: 0, message: { content: text } }] })] });
    expect(JSON.parse(r.responseBody[0]!.body!.toString()).choices[0].message.content).toBe(`Known ${EMAIL}, invented <EMAIL_9>, mangled <EMAIL 1> and <PHONE_1>.`);
  });

  it('a placeholder-looking string in the prompt is never turned into a value', async () => {
    const r0 = await run({ requestBody: openaiBody(`I literally typed <EMAIL_1>; my mail is ${EMAIL}`) });
    const sent = JSON.parse(r0.requestBody!.body!.toString()).messages[0].content as string;
    expect(sent).toBe('I literally typed <EMAIL_1>; my mail is <EMAIL_2>');
    const answer = { choices: [{ index: 0, message: { content: 'You typed <EMAIL_1>, your mail is <EMAIL_2>.' } }] };
    const r = await run({
      requestBody: openaiBody(`I literally typed <EMAIL_1>; my mail is ${EMAIL}`),
      responseHeaders: json,
      responseChunks: [JSON.stringify(answer)],
    });
    expect(JSON.parse(r.responseBody[0]!.body!.toString()).choices[0].message.content).toBe(`You typed <EMAIL_1>, your mail is ${EMAIL}.`);
  });

  it('a provider error body passes through untouched', async () => {
    const err = JSON.stringify({ error: { message: 'bad <EMAIL_1>' } });
    const r = await run({ requestBody: openaiBody(PROMPT), responseHeaders: { ...json, ':status': '400' }, responseChunks: [err] });
    expect(r.responseBody[0]!.body).toBeUndefined();
  });

  it('scanResponses counts what the model produced itself (counts only)', async () => {
    const answer = { choices: [{ index: 0, message: { content: 'Also reach bob.smith@corp-mail.org or <EMAIL_1>' } }] };
    const r = await run({ requestBody: openaiBody(PROMPT), responseHeaders: json, responseChunks: [JSON.stringify(answer)] }, { ...options, scanResponses: true });
    expect(r.x.get(piiResponseCounts)).toEqual({ EMAIL: 1 });
    expect(r.responseBody[0]!.metadata.get('ai_gateway')).toEqual({ pii_response_entities: { EMAIL: 1 } });
    expect(JSON.stringify(r.logs)).not.toContain('bob.smith');
  });
});

/** Runs an SSE answer through the stage in the given chunks; returns what the client reads. */
async function streamed(dialect: 'openai' | 'anthropic', chunks: Buffer[]) {
  const r = await run({
    ...(dialect === 'anthropic' ? { requestHeaders: anthropicPath } : {}),
    requestBody: dialect === 'openai' ? openaiBody(PROMPT) : anthropicBody(PROMPT),
    responseHeaders: eventStream,
    responseChunks: chunks,
  });
  const bytes = responseBytes(r, chunks);
  return { r, bytes, read: dialect === 'openai' ? reassembleOpenAI(bytes) : reassembleAnthropic(bytes) };
}

const streamOf = (dialect: 'openai' | 'anthropic', text: string[], args: string[]) => (dialect === 'openai' ? openaiStream(text, args) : anthropicStream(text, args));

describe.each(['openai', 'anthropic'] as const)('pii stage: %s SSE answers', (dialect) => {
  const last = dialect === 'openai' ? '[DONE]' : 'message_stop';

  it('placeholders split between two deltas at every position, text and tool arguments', async () => {
    for (let k = 0; k <= ANSWER.length; k++) {
      const j = Math.min(k, ARGS.length);
      const s = streamOf(dialect, [ANSWER.slice(0, k), ANSWER.slice(k)], [ARGS.slice(0, j), ARGS.slice(j)]);
      const { read } = await streamed(dialect, [Buffer.from(s)]);
      expect(read.text, `split at ${k}`).toBe(RESTORED);
      expect(JSON.parse(read.args), `split at ${j}`).toEqual(RESTORED_ARGS);
      expect(read.last).toBe(last);
    }
  });

  it('placeholders split across deltas, the byte stream cut in two at every byte', async () => {
    const s = Buffer.from(streamOf(dialect, ['Sent to <EMA', 'IL_1> re <', 'CODENAME_1>.'], ['{"to":"<', 'EMAIL_1>","code":"<CODENAME_', '1>"}']));
    for (let b = 1; b < s.length; b++) {
      const { read } = await streamed(dialect, cut(s, [b]));
      expect(read.text, `cut at byte ${b}`).toBe(RESTORED);
      expect(JSON.parse(read.args), `cut at byte ${b}`).toEqual(RESTORED_ARGS);
    }
  });

  it('one byte per chunk', async () => {
    const s = Buffer.from(streamOf(dialect, ['Sent to <EMA', 'IL_1> re <', 'CODENAME_1>.'], ['{"to":"<EMAIL', '_1>","code":"<CODENAME_1', '>"}']));
    const { read, r } = await streamed(dialect, cut(s, Array.from({ length: s.length - 1 }, (_, i) => i + 1)));
    expect(read.text).toBe(RESTORED);
    expect(JSON.parse(read.args)).toEqual(RESTORED_ARGS);
    expect(JSON.stringify(r.logs)).not.toContain('falcon');
  });

  it('holds back no more than a possible placeholder prefix', async () => {
    const s = streamOf(dialect, ['Sent to <EMAIL_', '1> now. <b>bold</b> a<b', ' c'], []);
    const { r, read } = await streamed(dialect, [Buffer.from(s)]);
    expect(read.text).toBe(`Sent to ${EMAIL} now. <b>bold</b> a<b c`);
    // Walk the emitted text deltas: the first one stops right before the held "<EMAIL_".
    const bytes = responseBytes(r, [s]).toString();
    expect(bytes).toContain(JSON.stringify('Sent to '));
    expect(bytes).toContain(JSON.stringify(`${EMAIL} now. <b>bold</b> a<b`));
  });

  it('an invented placeholder at the end of the stream is flushed as it is', async () => {
    const s = streamOf(dialect, ['Hello <EMAIL_1> and <EMAIL_'], []);
    const { read } = await streamed(dialect, [Buffer.from(s)]);
    expect(read.text).toBe(`Hello ${EMAIL} and <EMAIL_`);
  });

  it('a stream cut before its end still delivers what was held', async () => {
    const full = streamOf(dialect, ['Hi <EMAIL_1', '> <EMAIL'], []);
    const frames = full.split('\n\n');
    const truncated = `${frames.slice(0, dialect === 'openai' ? 3 : 5).join('\n\n')}\n\n`;
    const { read } = await streamed(dialect, [Buffer.from(truncated)]);
    expect(read.text).toBe(`Hi ${EMAIL} <EMAIL`);
  });
});

describe('pii stage: OpenAI stream details', () => {
  it('choices of n > 1 are restored independently', async () => {
    const base = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm' };
    const ev = (choices: unknown[]) => `data: ${JSON.stringify({ ...base, choices })}\n\n`;
    const s =
      ev([{ index: 0, delta: { content: 'A <EMAIL' }, finish_reason: null }]) +
      ev([{ index: 1, delta: { content: 'B <CODENAME_' }, finish_reason: null }]) +
      ev([{ index: 0, delta: { content: '_1>' }, finish_reason: null }]) +
      ev([{ index: 1, delta: { content: '1>' }, finish_reason: null }]) +
      ev([{ index: 0, delta: {}, finish_reason: 'stop' }]) +
      ev([{ index: 1, delta: {}, finish_reason: 'stop' }]) +
      'data: [DONE]\n\n';
    const { bytes } = await streamed('openai', [Buffer.from(s)]);
    const per = ['', ''];
    for (const line of bytes.toString().split('\n')) {
      if (!line.startsWith('data: {')) continue;
      for (const c of JSON.parse(line.slice(6)).choices) per[c.index] += c.delta.content ?? '';
    }
    expect(per).toEqual([`A ${EMAIL}`, `B ${CODE}`]);
  });

  it('an escaped \\u003c placeholder is restored too', async () => {
    const s = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }] }).replace('"x"', '"\\u003cEMAIL_1\\u003e"')}\n\ndata: [DONE]\n\n`;
    const { read } = await streamed('openai', [Buffer.from(s)]);
    expect(read.text).toBe(EMAIL);
  });
});
