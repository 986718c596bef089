/**
 * Wiring for the routing tests: a gateway config with a catalog, a four-step chain and rules of
 * each kind, the stage pipelines built from it in process (shared services like the server's),
 * and an end-to-end set-up that runs the Envoy bootstrap RENDERED from that config
 * (`renderEnvoy`) through the stand-in, with every chain cluster's priorities pointing at the
 * fake provider of its step.
 */
import { parseConfig } from '../../extproc/config/load.js';
import type { GatewayConfig } from '../../extproc/config/schema.js';
import { chainClusters } from '../../extproc/envoy-render/sections.js';
import { renderEnvoy } from '../../extproc/envoy-render/render.js';
import { ServiceRegistry } from '../../extproc/pipeline/services.js';
import { buildPipelines, builtinStages, stageCheck, type Pipelines } from '../../extproc/stages/registry.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import { startStandin, type Standin, type StandinOptions } from '../envoy-standin/standin.js';
import { startFakeProvider, type FakeProvider } from '../fakes/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

export const KEYS = { openai: 'sk-openai-gw', anthropic: 'sk-ant-gw', mistral: 'mistral-gw' } as const;

/** The stage list the routing tests run. */
export const routingStages = ['parse-request', { name: 'identity', sources: ['header'], header: 'x-caller-id' }, 'route', 'translate'];

/** A raw gateway config: three providers with keys, six models, one rule of each kind, a four-step default chain. */
export function routingConfigRaw(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pipeline: { stages: routingStages },
    providers: {
      openai: { api: 'openai', cluster: 'openai', apiKey: KEYS.openai },
      anthropic: { api: 'anthropic', cluster: 'anthropic', apiKey: KEYS.anthropic },
      mistral: { api: 'mistral', cluster: 'mistral', apiKey: KEYS.mistral },
    },
    models: {
      'claude-opus-4': { provider: 'anthropic', upstreamName: 'claude-opus-4-20250514', aliases: ['smart'], contextWindow: 200000, costTier: 'premium' },
      'gpt-4o': { provider: 'openai', contextWindow: 128000, costTier: 'standard' },
      'gpt-4o-mini': { provider: 'openai', aliases: ['fast', 'cheap'], contextWindow: 128000, costTier: 'cheap' },
      'claude-sonnet-4': { provider: 'anthropic', upstreamName: 'claude-sonnet-4-20250514', contextWindow: 200000, costTier: 'standard' },
      'mistral-small': { provider: 'mistral', upstreamName: 'mistral-small-latest', contextWindow: 1000, capabilities: { tools: false }, costTier: 'cheap' },
      'mistral-large': { provider: 'mistral', upstreamName: 'mistral-large-latest', contextWindow: 128000, costTier: 'standard' },
    },
    routes: [
      { name: 'checkout', match: { caller: 'spiffe://cluster.local/ns/shop/*' }, model: 'gpt-4o', fallback: ['claude-sonnet-4'] },
      { name: 'preferred-smart', match: { preference: 'smart' }, model: 'claude-opus-4', fallback: ['claude-sonnet-4'] },
      { name: 'asked-fast', match: { model: ['fast'] }, model: 'mistral-small', fallback: ['gpt-4o-mini', 'mistral-large'] },
      { name: 'tier-cheap', match: { costTier: 'cheap' }, model: 'gpt-4o-mini' },
      { name: 'hard', match: { complexity: { min: 0.5 } }, model: 'claude-opus-4', fallback: ['gpt-4o'] },
      { name: 'quick', match: { withinLatency: true }, model: 'gpt-4o-mini', fallback: ['mistral-large'] },
      {
        name: 'main',
        model: 'claude-opus-4',
        fallback: ['gpt-4o', 'claude-sonnet-4', 'mistral-large'],
        retryOn: [429, 500, 502, 503, 504, 529, 'connect-failure', 'reset', 'per-try-timeout'],
        perTryTimeoutMs: 2000,
      },
    ],
    ...overrides,
  };
}

export function routingConfig(overrides: Record<string, unknown> = {}): GatewayConfig {
  return parseConfig(routingConfigRaw(overrides), [stageCheck(builtinStages)]);
}

/** The router and attempt pipelines of a config, built like the server builds them (one service registry). */
export function pipelinesOf(config: GatewayConfig, registry = new ServiceRegistry(createLogger('error'), 0)): Pipelines {
  const gen = registry.generation();
  const p = buildPipelines(config, builtinStages, { log: createLogger('error'), services: gen.services });
  gen.commit();
  return p;
}

/** The attributes Envoy's attempt filter sends for a chain endpoint (envoy.yaml `request_attributes`). */
export function hostAttributes(route: string, step: number, model: string, provider: string): Record<string, unknown> {
  return {
    "xds.upstream_host_metadata.filter_metadata['ai_gateway']": { route, step, model, provider },
    'xds.cluster_name': `chain_${route}_from_0`,
  };
}

export type Fakes = Record<'openai' | 'anthropic' | 'mistral', FakeProvider>;

/** Fake providers that check the gateway's keys like the real APIs. */
export async function startFakes(): Promise<Fakes> {
  const [openai, anthropic, mistral] = await Promise.all(
    (['openai', 'anthropic', 'mistral'] as const).map((kind) => startFakeProvider({ kind, auth: { apiKey: KEYS[kind] } })),
  );
  return { openai: openai!, anthropic: anthropic!, mistral: mistral! };
}

/** Every chain cluster's priorities → the fake of each step; the provider clusters → their fake. */
export function endpointsFor(config: GatewayConfig, fakes: Fakes): Record<string, string | string[][]> {
  const urlOf = (provider: string): string => fakes[config.providers[provider]!.api].url;
  const out: Record<string, string | string[][]> = {};
  for (const c of chainClusters(config)) out[c.name] = c.steps.map((s) => [urlOf(s.provider)]);
  for (const [, p] of Object.entries(config.providers)) out[p.cluster] = fakes[p.api].url;
  return out;
}

export interface RoutingE2E {
  config: GatewayConfig;
  gateway: TestGateway;
  envoy: Standin;
  fakes: Fakes;
  close(): Promise<void>;
}

/**
 * Gateway + stand-in running the rendered bootstrap + three fakes. `bootstrap` may rewrite the
 * parsed bootstrap (e.g. point the attempt filter at another gateway replica); `extraEndpoints`
 * adds cluster overrides; `extProcAddress: null` leaves the ext_proc clusters to them.
 */
export async function startRoutingE2E(
  raw: Record<string, unknown> = routingConfigRaw(),
  opts: { fakes?: Fakes; bootstrap?: (doc: Record<string, unknown>) => Record<string, unknown>; extraEndpoints?: Record<string, string | string[][]>; extProcAddress?: string | null } = {},
): Promise<RoutingE2E> {
  const config = parseConfig(raw, [stageCheck(builtinStages)]);
  const fakes = opts.fakes ?? (await startFakes());
  const gateway = await startTestGateway(raw);
  const yaml = renderEnvoy(config);
  const standinOpts: StandinOptions = {
    // null: the test points the ext_proc clusters itself (extraEndpoints), e.g. at two replicas.
    ...(opts.extProcAddress === null ? {} : { extProcAddress: opts.extProcAddress ?? `127.0.0.1:${gateway.port}` }),
    clusterEndpoints: { ...endpointsFor(config, fakes), ...opts.extraEndpoints },
    seed: 3,
    backOffScale: 0.01,
  };
  if (opts.bootstrap) {
    const YAML = (await import('yaml')).default;
    standinOpts.bootstrap = opts.bootstrap(YAML.parse(yaml) as Record<string, unknown>);
  } else standinOpts.envoyYaml = yaml;
  const envoy = await startStandin(standinOpts);
  return {
    config,
    gateway,
    envoy,
    fakes,
    async close() {
      await envoy.close();
      await gateway.close(200);
      if (!opts.fakes) await Promise.all(Object.values(fakes).map((f) => f.close()));
    },
  };
}

/**
 * The rendered bootstrap with the attempt filter on its own gRPC cluster `ext_proc_attempt` (a
 * copy of `ext_proc`), so a test can send router streams to one gateway replica and attempt
 * streams to another.
 */
export function splitAttemptCluster(doc: Record<string, unknown>): Record<string, unknown> {
  const sr = doc['static_resources'] as { clusters: Record<string, unknown>[] };
  const base = sr.clusters.find((c) => c['name'] === 'ext_proc')!;
  const copy = structuredClone(base);
  copy['name'] = 'ext_proc_attempt';
  (copy['load_assignment'] as Record<string, unknown>)['cluster_name'] = 'ext_proc_attempt';
  for (const c of sr.clusters) {
    const opts = c['typed_extension_protocol_options'] as Record<string, { http_filters?: { name: string; typed_config: { grpc_service: { envoy_grpc: { cluster_name: string } } } }[] }> | undefined;
    for (const f of opts?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']?.http_filters ?? []) {
      if (f.name === 'envoy.filters.http.ext_proc') f.typed_config.grpc_service.envoy_grpc.cluster_name = 'ext_proc_attempt';
    }
  }
  sr.clusters.push(copy);
  return doc;
}
