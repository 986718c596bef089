/** Catalog validation: every bad model/alias/route reference is a config error naming its key. */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../extproc/config/load.js';
import { buildCatalog } from '../../extproc/routing/catalog.js';
import { catalogConfig, config } from './fixtures.js';

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const providers = { openai: { api: 'openai', cluster: 'openai' } };

describe('catalog validation', () => {
  it('accepts the fixture and resolves aliases in chains and matches', () => {
    const c = buildCatalog(config());
    expect(c.byName.get('fast')?.name).toBe('gpt-4o-mini');
    expect(c.routes.map((r) => r.name)).toContain('default-chain');
    expect(c.routeByName.get('asked-fast')!.match.model).toEqual(new Set(['gpt-4o-mini']));
    expect(c.routeByName.get('default-chain')!.steps.map((s) => [s.index, s.model, s.provider, s.host])).toEqual([
      [0, 'claude-opus-4', 'anthropic', 'api.anthropic.com'],
      [1, 'gpt-4o', 'openai', 'api.openai.com'],
      [2, 'claude-sonnet-4', 'anthropic', 'api.anthropic.com'],
      [3, 'mistral-large', 'mistral', 'api.mistral.ai'],
    ]);
    expect(c.routeByName.get('default-chain')!.steps[0]!.upstreamName).toBe('claude-opus-4-20250514');
  });

  it('names an unknown model in a chain, a match, and a fallback', () => {
    expect(
      problems({
        providers,
        models: { a: { provider: 'openai' } },
        routes: [{ match: { model: 'nope' }, model: 'a' }, { model: 'b', fallback: ['a', 'c'] }],
      }),
    ).toEqual(['routes[0].match.model[0]: unknown model "nope"', 'routes[1].model: unknown model "b"', 'routes[1].fallback[1]: unknown model "c"']);
  });

  it('refuses alias loops (an alias that is a model name), duplicate aliases, and a model twice in a chain', () => {
    expect(problems({ providers, models: { a: { provider: 'openai', aliases: ['b'] }, b: { provider: 'openai', aliases: ['a'] } } })).toEqual([
      'models.a.aliases[0]: alias "b" is also a model name (an alias must name one model, without loops)',
      'models.b.aliases[0]: alias "a" is also a model name (an alias must name one model, without loops)',
    ]);
    expect(problems({ providers, models: { a: { provider: 'openai', aliases: ['fast'] }, b: { provider: 'openai', aliases: ['fast'] } } })).toEqual([
      'models.b.aliases[0]: alias "fast" is already an alias of model "a"',
    ]);
    expect(problems({ providers, models: { a: { provider: 'openai', aliases: ['x'] } }, routes: [{ model: 'a', fallback: ['x'] }] })).toEqual([
      'routes[0].fallback[0]: model "a" is already a step of this chain',
    ]);
  });

  it('needs a default route at the end, unique names, and retry triggers that make sense', () => {
    const models = { a: { provider: 'openai' } };
    expect(problems({ providers, models, routes: [{ match: { caller: 'x' }, model: 'a' }] })).toEqual([
      'routes[0].match: the last route must be a default (no match): a request no rule takes needs a route',
    ]);
    expect(problems({ providers, models, routes: [{ name: 'r', model: 'a' }, { name: 'r', model: 'a' }] })).toEqual(['routes[1].name: route name "r" is already used by routes[0]']);
    expect(problems({ providers, models, routes: [{ model: 'a', retryOn: [400, 'per-try-timeout'] }] })).toEqual([
      'routes[0].retryOn[0]: 400 is caused by the request itself and never falls over (4xx allowed: 408, 409, 429)',
      'routes[0].retryOn[1]: per-try-timeout needs perTryTimeoutMs',
    ]);
    expect(problems({ providers, models, routes: [{ match: { complexity: { min: 0.8, max: 0.2 } }, model: 'a' }, { model: 'a' }] })).toEqual([
      'routes[0].match.complexity: min is above max',
    ]);
    expect(problems({ providers, models, routes: [{ name: 'bad name!', model: 'a' }] })[0]).toMatch(/^routes\[0\]\.name: /);
    expect(problems({ providers, models, routes: [{ match: { costTier: 'gold' }, model: 'a' }, { model: 'a' }] })[0]).toMatch(/^routes\[0\]\.match\.costTier/);
  });

  it('keeps the pre-routing shape valid (a single route without match or name)', () => {
    expect(problems({ providers, models: { a: { provider: 'openai' } }, routes: [{ model: 'a' }] })).toEqual([]);
    expect(buildCatalog(parseConfig({ providers, models: { a: { provider: 'openai' } }, routes: [{ model: 'a' }] })).routes[0]!.name).toBe('route-0');
  });

  it('takes provider host and port for the chain endpoints', () => {
    const c = buildCatalog(config({ providers: { ...catalogConfig.providers, openai: { api: 'openai', cluster: 'openai', host: 'oai.internal', port: 8443 } } }));
    const step = c.routeByName.get('checkout')!.steps[0]!;
    expect([step.host, step.port]).toEqual(['oai.internal', 8443]);
    expect(problems({ providers: { openai: { api: 'openai', cluster: 'openai', host: 'https://x' } } })[0]).toMatch(/^providers\.openai\.host: /);
  });
});
