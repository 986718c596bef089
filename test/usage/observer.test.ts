/**
 * The usage stage in observer mode (`pipeline.streamObserver: true`) end to end: the shipped
 * envoy.yaml plus the observability-mode ext_proc filter, the Anthropic SDK streaming through the
 * stand-in. The main stream asks for no response body at all; the record's usage comes from the
 * send-and-go observability stream, once per request.
 */
import fs from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { builtinStages } from '../../extproc/stages/registry.js';
import { usageStage } from '../../extproc/stages/usage.js';
import { startStandin, type Standin } from '../envoy-standin/standin.js';
import { expectedAnswer, startFakeProvider, type FakeProvider } from '../fakes/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { envoyYamlPath } from '../e2e/helpers.js';

const extraStages: StageFactory<never>[] = builtinStages.has('usage') ? [] : [usageStage as unknown as StageFactory<never>];

function bootstrapWithObserver(): Record<string, any> {
  const doc = YAML.parse(fs.readFileSync(envoyYamlPath, 'utf8')) as Record<string, any>;
  const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const filters: Record<string, any>[] = hcm.http_filters;
  const main = filters.findIndex((f) => f.name === 'envoy.filters.http.ext_proc');
  filters.splice(main + 1, 0, {
    name: 'envoy.filters.http.ext_proc/observer',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
      grpc_service: { envoy_grpc: { cluster_name: 'ext_proc' } },
      observability_mode: true,
      deferred_close_timeout: '0.2s',
      stat_prefix: 'observer',
      processing_mode: { request_header_mode: 'SEND', response_header_mode: 'SEND', request_body_mode: 'NONE', response_body_mode: 'STREAMED' },
    },
  });
  return doc;
}

let provider: FakeProvider;
let gateway: TestGateway;
let envoy: Standin;

beforeAll(async () => {
  provider = await startFakeProvider({ kind: 'anthropic' });
  gateway = await startTestGateway(
    {
      pipeline: { streamObserver: true, observerLingerMs: 2000, stages: ['parse-request', 'identity', { name: 'usage', ledger: false }] },
      providers: { anthropic: { api: 'anthropic', cluster: 'anthropic' } },
      models: { 'claude-opus-4': { provider: 'anthropic', upstreamName: 'claude-opus-4-20250514' } },
    },
    extraStages,
  );
  envoy = await startStandin({
    bootstrap: bootstrapWithObserver(),
    extProcAddress: `127.0.0.1:${gateway.port}`,
    clusterEndpoints: { llm_chain: [[provider.url], [provider.url], [provider.url], [provider.url]], openai: provider.url, anthropic: provider.url, mistral: provider.url },
    seed: 3,
  });
}, 30_000);
afterAll(async () => {
  await envoy?.close();
  await gateway?.close(500);
  await provider?.close();
});

describe('usage on the observability stream', () => {
  it('records the exact usage of a streamed Anthropic answer once, from the observability stream', async () => {
    const client = new Anthropic({ baseURL: envoy.url, apiKey: 'sk-ant-test', maxRetries: 0 });
    const params = { model: 'claude-opus-4-20250514', max_tokens: 300, messages: [{ role: 'user' as const, content: 'Tell me about observability filters.' }] };
    const stream = client.messages.stream(params);
    const final = await stream.finalMessage();
    const exp = expectedAnswer('anthropic', params);
    expect(final.usage.output_tokens).toBe(exp.outputTokens);
    const deadline = Date.now() + 5000;
    while (!gateway.logs.some((l) => l['msg'] === 'usage') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const records = gateway.logs.filter((l) => l['msg'] === 'usage');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      input_tokens: exp.inputTokens, output_tokens: exp.outputTokens, estimated: false, stream: true,
      served_model: 'claude-opus-4', provider: 'anthropic', outcome: 'completed', error_class: null, status: 200,
    });
    expect(records[0]!['ttft_ms']).not.toBeNull();
    expect(records[0]!['caller']).toMatch(/^key:/);
  });
});
