/** A gateway config with a catalog and one rule of each kind, for the routing tests. */
import { parseConfig } from '../../extproc/config/load.js';
import type { GatewayConfig } from '../../extproc/config/schema.js';

export const catalogConfig = {
  providers: {
    openai: { api: 'openai', cluster: 'openai' },
    anthropic: { api: 'anthropic', cluster: 'anthropic' },
    mistral: { api: 'mistral', cluster: 'mistral' },
  },
  models: {
    'claude-opus-4': { provider: 'anthropic', upstreamName: 'claude-opus-4-20250514', aliases: ['smart'], contextWindow: 200000, costTier: 'premium' },
    'gpt-4o': { provider: 'openai', contextWindow: 128000, costTier: 'standard' },
    'gpt-4o-mini': { provider: 'openai', aliases: ['fast', 'cheap'], contextWindow: 128000, costTier: 'cheap' },
    'claude-sonnet-4': { provider: 'anthropic', contextWindow: 200000, costTier: 'standard' },
    'mistral-small': { provider: 'mistral', contextWindow: 1000, capabilities: { tools: false, vision: false }, costTier: 'cheap' },
    'mistral-large': { provider: 'mistral', contextWindow: 128000, costTier: 'standard' },
  },
  routes: [
    { name: 'checkout', match: { caller: 'spiffe://cluster.local/ns/shop/*' }, model: 'gpt-4o', fallback: ['claude-sonnet-4'] },
    { name: 'preferred-smart', match: { preference: 'smart' }, model: 'claude-opus-4', fallback: ['claude-sonnet-4'] },
    { name: 'asked-fast', match: { model: ['fast'] }, model: 'mistral-small', fallback: ['gpt-4o-mini', 'mistral-large'] },
    { name: 'tier-cheap', match: { costTier: 'cheap' }, model: 'gpt-4o-mini' },
    { name: 'over-budget', match: { budgetUsedAbove: 0.8 }, model: 'mistral-large', retryOn: [429, 'connect-failure'] },
    { name: 'hard', match: { complexity: { min: 0.5 } }, model: 'claude-opus-4', fallback: ['gpt-4o'] },
    { name: 'quick', match: { withinLatency: true }, model: 'gpt-4o-mini', fallback: ['mistral-large'] },
    {
      name: 'default-chain',
      model: 'claude-opus-4',
      fallback: ['gpt-4o', 'claude-sonnet-4', 'mistral-large'],
      retryOn: [429, 500, 502, 503, 504, 529, 'connect-failure', 'reset', 'per-try-timeout'],
      perTryTimeoutMs: 30000,
    },
  ],
};

export function config(overrides: Record<string, unknown> = {}): GatewayConfig {
  return parseConfig({ ...catalogConfig, ...overrides });
}
