/**
 * Budgets steer routing: the rate-limit stage publishes the caller's budget use at request
 * headers (slot `budgetUsage`), and the route stage's `budgetUsedAbove` rule sends a nearly spent
 * caller to the cheap chain; below the threshold, or when the budget cannot be read, the request
 * keeps its usual route.
 */
import { describe, expect, it } from 'vitest';
import { buildPipelines, builtinStages, extendRegistry, stageCheck } from '../../extproc/stages/registry.js';
import { budgetUsage } from '../../extproc/stages/rateLimitSlots.js';
import { parseConfig } from '../../extproc/config/load.js';
import { ServiceRegistry } from '../../extproc/pipeline/services.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { runScript } from '../helpers/harness.js';
import { routingConfigRaw } from '../e2e/routingHelpers.js';

/** Stands in for the rate-limit stage's request-headers half: publishes a budget fraction. */
function budgetPublisher(fraction: () => Promise<number>): StageFactory<never> {
  return { name: 'test-budget', create: () => ({ name: 'test-budget', failure: 'open', requestHeaders: (x) => x.set(budgetUsage, fraction()) }) };
}

async function clusterFor(fraction: () => Promise<number>): Promise<string | undefined> {
  const registry = extendRegistry(builtinStages, [budgetPublisher(fraction)]);
  const raw = routingConfigRaw();
  const routes = raw['routes'] as Record<string, unknown>[];
  // A nearly spent caller goes to the cheap chain; the default route stays last.
  const withBudgetRule = [{ name: 'over-budget', match: { budgetUsedAbove: 0.8 }, model: 'gpt-4o-mini' }, ...routes];
  const config = parseConfig({ ...raw, routes: withBudgetRule, pipeline: { stages: ['parse-request', 'test-budget', 'route'] } }, [stageCheck(registry)]);
  const gen = new ServiceRegistry(createLogger('error'), 0).generation();
  const pipelines = buildPipelines(config, registry, { log: createLogger('error'), services: gen.services });
  gen.commit();
  const run = await runScript(pipelines.router, { requestBody: { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] } });
  return run.requestBody?.setHeaders.get('x-gateway-cluster');
}

describe('budget use steers routing', () => {
  it('above the threshold the cheap chain serves; below it the usual route', async () => {
    expect(await clusterFor(() => Promise.resolve(0.85))).toBe('chain_over-budget_from_0');
    expect(await clusterFor(() => Promise.resolve(0.5))).toBe('llm_chain');
  });

  it('a budget that cannot be read routes as if nothing were spent', async () => {
    expect(await clusterFor(() => Promise.reject(new Error('redis down')))).toBe('llm_chain');
    expect(await clusterFor(() => new Promise<number>(() => undefined))).toBe('llm_chain');
  });
});
