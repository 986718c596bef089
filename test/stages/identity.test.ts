/**
 * The `identity` stage: caller from the XFCC SPIFFE URI (the element Envoy appended last), a
 * header, or a credential hash; a 401 in the client's dialect when refused; never the raw
 * credential in a slot, metadata or log line. In process, then through the stand-in with both SDKs.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityOptionsSchema } from '../../extproc/identity/index.js';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { callerIdentity, identityStage } from '../../extproc/stages/identity.js';
import { startE2E, type E2E } from '../e2e/helpers.js';
import { testStage } from '../helpers/gateway.js';
import { pipelineOf, runScript } from '../helpers/harness.js';

const xfcc = 'By=spiffe://cluster.local/ns/llm/sa/gateway;Hash=abc;URI=spiffe://cluster.local/ns/evil/sa/spoof,By=spiffe://cluster.local/ns/llm/sa/gateway;Hash="d,e;f";URI=spiffe://cluster.local/ns/shop/sa/checkout';
const stageWith = (options: Record<string, unknown> = {}) => identityStage.create(identityOptionsSchema.parse(options), {} as never);

describe('identity stage in process', () => {
  it('takes the SPIFFE URI of the last XFCC element and publishes the caller as metadata', async () => {
    const run = await runScript(pipelineOf([stageWith()]), { requestHeaders: { 'x-forwarded-client-cert': xfcc } });
    expect(run.x.get(callerIdentity)).toMatchObject({ caller: 'spiffe://cluster.local/ns/shop/sa/checkout', source: 'xfcc', namespace: 'shop', serviceAccount: 'checkout' });
    expect(run.requestHeaders!.metadata.get('ai_gateway')).toEqual({ caller: 'spiffe://cluster.local/ns/shop/sa/checkout' });
  });

  it('an API key becomes a hash, never the key itself, in slot, metadata and logs', async () => {
    const key = 'sk-proj-very-secret-123456';
    const run = await runScript(pipelineOf([stageWith()]), { requestHeaders: { authorization: `Bearer ${key}` } });
    const caller = run.x.get(callerIdentity)!.caller;
    expect(caller).toMatch(/^key:[0-9a-f]{16}$/);
    expect(JSON.stringify([...run.requestHeaders!.metadata], null, 0)).not.toContain(key);
    expect(JSON.stringify(run.logs)).not.toContain(key);
  });

  it('a malformed XFCC is refused with 401 in the Anthropic shape on /v1/messages', async () => {
    const run = await runScript(pipelineOf([stageWith()]), { requestHeaders: { ':path': '/v1/messages', 'x-forwarded-client-cert': 'By="unterminated' } });
    expect(run.reply?.status).toBe(401);
    expect(JSON.parse(String(run.reply!.body))).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });

  it('no identity: the default caller, or 401 when configured to refuse', async () => {
    const open = await runScript(pipelineOf([stageWith({ defaultCaller: 'anonymous' })]), {});
    expect(open.x.get(callerIdentity)?.caller).toBe('anonymous');
    const strict = await runScript(pipelineOf([stageWith({ refuse: true })]), {});
    expect(strict.reply?.status).toBe(401);
    expect(JSON.parse(String(strict.reply!.body)).error.type).toBe('authentication_error');
  });
});

describe('identity through Envoy with the SDKs', () => {
  const callers: string[] = [];
  const recorder: StageFactory<never> = testStage('test-callers', { requestHeaders: (x) => void callers.push(x.get(callerIdentity)?.caller ?? 'none') });
  let e: E2E;
  beforeAll(async () => {
    e = await startE2E('openai', { pipeline: { stages: ['parse-request', { name: 'identity', sources: ['xfcc', 'header'], refuse: true }, 'test-callers'] } }, [recorder]);
  });
  afterAll(() => e.close());

  it('an OpenAI client with a mesh identity is served; without one it gets the SDK’s AuthenticationError', async () => {
    const ok = new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-forwarded-client-cert': xfcc } });
    await ok.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    expect(callers).toContain('spiffe://cluster.local/ns/shop/sa/checkout');
    const anonymous = new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const err = await anonymous.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(e.provider.requests).toHaveLength(1); // the refused call never left
  });

  it('an Anthropic client without identity gets Anthropic’s AuthenticationError', async () => {
    const anthropic = new Anthropic({ baseURL: e.envoy.url, apiKey: 'sk-ant-test', maxRetries: 0 });
    const err = await anthropic.messages.create({ model: 'claude-sonnet-4', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
  });
});
