/** Chain lookups: clusters and retry headers per start step; which step an attempt went to. */
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../extproc/routing/catalog.js';
import { clusterFor, retryHeadersFor, stepFromUpstream } from '../../extproc/routing/steps.js';
import { UPSTREAM_HOST_METADATA_ATTRIBUTE } from '../../extproc/routing/envoyChain.js';
import { config } from './fixtures.js';

const catalog = buildCatalog(config());
const route = catalog.routeByName.get('default-chain')!;

describe('clusterFor / retryHeadersFor', () => {
  it('names one cluster per start step and sets retries to the steps left', () => {
    expect([0, 1, 2, 3].map((k) => clusterFor(route, k))).toEqual([0, 1, 2, 3].map((k) => (k === 0 ? 'llm_chain' : `chain_default-chain_from_${k}`)));
    expect(retryHeadersFor(route)['x-envoy-max-retries']).toBe('3');
    expect(retryHeadersFor(route, 2)).toMatchObject({ 'x-gateway-cluster': 'chain_default-chain_from_2', 'x-envoy-max-retries': '1' });
    expect(retryHeadersFor(route, 1, 1)['x-envoy-max-retries']).toBe('0');
    expect(() => clusterFor(route, 4)).toThrow(RangeError);
    expect(() => retryHeadersFor(route, 3, 2)).toThrow(RangeError);
  });
});

describe('stepFromUpstream', () => {
  it('reads the step from the whole metadata namespace', () => {
    const s = stepFromUpstream({ [UPSTREAM_HOST_METADATA_ATTRIBUTE]: { route: 'default-chain', step: 2, model: 'claude-sonnet-4', provider: 'anthropic' } }, catalog);
    expect(s?.route).toBe('default-chain');
    expect(s?.step).toMatchObject({ index: 2, model: 'claude-sonnet-4', provider: 'anthropic', api: 'anthropic' });
  });

  it('reads single-key attributes and string step numbers', () => {
    const k = (f: string) => `xds.upstream_host_metadata.filter_metadata['ai_gateway']['${f}']`;
    const s = stepFromUpstream({ [k('route')]: 'default-chain', [k('step')]: '1', [k('model')]: 'gpt-4o' }, catalog);
    expect(s?.step.model).toBe('gpt-4o');
  });

  it('falls back to model + provider when the route is unknown, and refuses disagreement', () => {
    const ns = (v: object) => ({ [UPSTREAM_HOST_METADATA_ATTRIBUTE]: v });
    expect(stepFromUpstream(ns({ route: 'renamed', step: 0, model: 'gpt-4o', provider: 'openai' }), catalog)?.step.model).toBe('gpt-4o');
    // The route's step 0 is claude-opus-4, not gpt-4o: metadata from another config. Model wins.
    expect(stepFromUpstream(ns({ route: 'default-chain', step: 0, model: 'gpt-4o', provider: 'openai' }), catalog)?.step.model).toBe('gpt-4o');
    expect(stepFromUpstream(ns({ model: 'gpt-4o', provider: 'anthropic' }), catalog)).toBeUndefined();
    expect(stepFromUpstream(ns({ model: 'nope' }), catalog)).toBeUndefined();
    expect(stepFromUpstream({}, catalog)).toBeUndefined();
    expect(stepFromUpstream({ [UPSTREAM_HOST_METADATA_ATTRIBUTE]: 'garbage' }, catalog)).toBeUndefined();
  });
});
