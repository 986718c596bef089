/**
 * Header and body mutations (facts §1.3, §2.6, §2.7, §2.11): the mutation_rules.cc checker order,
 * raw_value vs value, content-length rules, CONTINUE_AND_REPLACE, clear_body, and clear_route_cache
 * with route_cache_action.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MutationRulesConfig } from '../envoy-standin/config/index.js';
import { HeaderMap } from '../envoy-standin/headers.js';
import { MutationChecker, applyHeaderMutations } from '../envoy-standin/mutationRules.js';
import {
  autoRespond,
  json,
  request,
  setHeader,
  standinFor,
  staticCluster,
  startScriptedExtProc,
  startUpstream,
  type Hook,
  type TestConfig,
} from './helpers.js';

const rules = (r: Partial<MutationRulesConfig> = {}): MutationRulesConfig => ({
  allow_all_routing: false,
  allow_envoy: false,
  disallow_system: false,
  disallow_all: false,
  disallow_is_error: false,
  ...r,
});

describe('mutation rules (Checker::isAllowed order)', () => {
  it('protects routing and x-envoy headers by default, allows :path and ordinary headers', () => {
    const c = new MutationChecker(rules());
    expect(c.check('SET', ':path', '/v2')).toBe('OK');
    expect(c.check('SET', 'authorization', 'Bearer k')).toBe('OK');
    for (const h of [':authority', 'host', ':method', ':scheme']) expect(c.check('SET', h, 'x')).toBe('IGNORE');
    expect(c.check('SET', 'x-envoy-max-retries', '3')).toBe('IGNORE');
    expect(c.check('REMOVE', ':path', '')).toBe('IGNORE');
    expect(c.check('REMOVE', 'host', '')).toBe('IGNORE');
    expect(c.check('APPEND', ':path', '/x')).toBe('IGNORE');
    expect(c.check('SET', ':status', '199')).toBe('IGNORE');
    expect(c.check('SET', ':status', '201')).toBe('OK');
  });

  it('applies allow_all_routing, allow_envoy, disallow_system, disallow_all and the expressions in order', () => {
    expect(new MutationChecker(rules({ allow_all_routing: true })).check('SET', ':authority', 'api.openai.com')).toBe('OK');
    expect(new MutationChecker(rules({ allow_all_routing: true })).check('SET', ':authority', 'bad host')).toBe('IGNORE');
    expect(new MutationChecker(rules({ allow_all_routing: true })).check('REMOVE', ':authority', '')).toBe('IGNORE');
    expect(new MutationChecker(rules({ allow_envoy: true })).check('SET', 'x-envoy-max-retries', '3')).toBe('OK');
    expect(new MutationChecker(rules({ disallow_system: true })).check('SET', ':path', '/x')).toBe('IGNORE');
    expect(new MutationChecker(rules({ disallow_all: true })).check('SET', 'a', 'b')).toBe('IGNORE');
    const expr = new MutationChecker(rules({ disallow_all: true, allow_expression: /^(?:x-ok-.*)$/, disallow_expression: /^(?:x-ok-no)$/ }));
    expect(expr.check('SET', 'x-ok-yes', '1')).toBe('OK');
    expect(expr.check('SET', 'x-ok-no', '1')).toBe('IGNORE');
    expect(new MutationChecker(rules({ disallow_is_error: true })).check('SET', ':authority', 'x')).toBe('FAIL');
  });

  it('reads raw_value: value alone sets an empty header, both set is an error, append adds', () => {
    const c = new MutationChecker(rules());
    const opts = { replacingMessage: false, removeContentLength: false, onRejected: () => {} };
    const h = HeaderMap.fromPairs([['a', '1']]);
    expect(applyHeaderMutations({ set_headers: [{ header: { key: 'v', value: 'text' } }] }, h, c, opts).ok).toBe(true);
    expect(h.get('v')).toBe('');
    expect(applyHeaderMutations({ set_headers: [{ header: { key: 'a', raw_value: Buffer.from('2') }, append: { value: true } }] }, h, c, opts).ok).toBe(true);
    expect(h.getAll('a')).toEqual(['1', '2']);
    const both = applyHeaderMutations({ set_headers: [{ header: { key: 'b', value: 'x', raw_value: Buffer.from('y') } }] }, h, c, opts);
    expect(both).toEqual({ ok: false, message: 'Only one of value or raw_value in the HeaderValue message should be set.' });
    expect(applyHeaderMutations({ set_headers: [setHeader('c', 'bad\r\nvalue')] }, h, c, opts).ok).toBe(false);
    expect(applyHeaderMutations({ remove_headers: ['bad name'] }, h, c, opts).ok).toBe(false);
    // Content-length is skipped silently when the body mode removes it.
    applyHeaderMutations({ set_headers: [setHeader('content-length', '5')] }, h, c, { ...opts, removeContentLength: true });
    expect(h.has('content-length')).toBe(false);
    // :method may change with CONTINUE_AND_REPLACE regardless of the rules.
    const m = HeaderMap.fromPairs([[':method', 'GET']]);
    applyHeaderMutations({ set_headers: [setHeader(':method', 'POST')] }, m, c, { ...opts, replacingMessage: true });
    expect(m.get(':method')).toBe('POST');
  });
});

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const BUFFERED = { request_header_mode: 'SEND', request_body_mode: 'BUFFERED', response_header_mode: 'SEND', response_body_mode: 'BUFFERED' };

async function run(hook: Hook, cfg: TestConfig = { extProc: { processing_mode: BUFFERED } }, reqBody = 'original') {
  const ep = await startScriptedExtProc(autoRespond(hook));
  const up = await startUpstream((r, res) => json(res, 200, { body: r.body.toString(), url: r.url, headers: r.headers }));
  const envoy = await standinFor(ep, up.url, cfg);
  cleanup.push(() => ep.close(), () => up.close(), () => envoy.close());
  const res = await request(`${envoy.url}/orig`, { body: reqBody, headers: { 'x-keep': 'k' } });
  return { res, up, ep, envoy, seen: up.requests[0] };
}

describe('mutations applied end to end', () => {
  it('applies allowed header mutations and ignores protected ones', async () => {
    const { res, seen, envoy } = await run((m) =>
      m.request === 'request_headers'
        ? {
            request_headers: {
              response: {
                header_mutation: {
                  set_headers: [setHeader(':path', '/rewritten'), setHeader(':authority', 'evil'), setHeader('x-envoy-max-retries', '9'), setHeader('x-added', 'v')],
                  remove_headers: ['x-keep', ':method'],
                },
              },
            },
          }
        : undefined,
    );
    expect(res.status).toBe(200);
    expect(seen!.url).toBe('/rewritten');
    expect(seen!.headers.host).not.toBe('evil');
    expect(seen!.headers['x-envoy-max-retries']).toBeUndefined();
    expect(seen!.headers['x-added']).toBe('v');
    expect(seen!.headers['x-keep']).toBeUndefined();
    expect(seen!.method).toBe('POST');
    expect(envoy.stats.counter('ext_proc.rejected_header_mutations')).toBe(3);
  });

  it('turns a rejected mutation into a 500 with disallow_is_error', async () => {
    const { res, up } = await run(
      (m) => (m.request === 'request_headers' ? { request_headers: { response: { header_mutation: { set_headers: [setHeader('host', 'x')] } } } } : undefined),
      { extProc: { processing_mode: BUFFERED, mutation_rules: { disallow_is_error: true } } },
    );
    expect(res.status).toBe(500);
    expect(up.requests).toHaveLength(0);
  });

  it('answers 500 when a header carries both value and raw_value, and sets an empty value from value alone', async () => {
    const both = await run((m) =>
      m.request === 'request_headers' ? { request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'x', value: 'a', raw_value: Buffer.from('b') } }] } } } } : undefined,
    );
    expect(both.res.status).toBe(500);
    const valueOnly = await run((m) =>
      m.request === 'request_headers' ? { request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'x-v', value: 'text' } }] } } } } : undefined,
    );
    expect(valueOnly.seen!.headers['x-v']).toBe('');
  });

  it('BUFFERED body mutation: a stale content-length is a 500, a matching one goes upstream', async () => {
    const stale = await run((m) => (m.request === 'request_body' ? { request_body: { response: { body_mutation: { body: Buffer.from('much longer body') } } } } : undefined));
    expect(stale.res.status).toBe(500);
    expect(stale.up.requests).toHaveLength(0);
    await stale.envoy.stats.waitForRequests(1);
    expect(stale.envoy.stats.requests[0]!.responseCodeDetails).toBe('mismatch_between_content_length_and_the_length_of_the_mutated_body');

    const fixed = await run((m) =>
      m.request === 'request_body'
        ? { request_body: { response: { header_mutation: { set_headers: [setHeader('content-length', '16')] }, body_mutation: { body: Buffer.from('much longer body') } } } }
        : undefined,
    );
    expect(fixed.res.status).toBe(200);
    expect(fixed.seen!.body.toString()).toBe('much longer body');
    expect(fixed.seen!.headers['content-length']).toBe('16');
  });

  it('clear_body with content-length removed sends an empty body', async () => {
    const { seen } = await run((m) =>
      m.request === 'request_body' ? { request_body: { response: { header_mutation: { remove_headers: ['content-length'] }, body_mutation: { clear_body: true } } } } : undefined,
    );
    expect(seen!.body.length).toBe(0);
  });

  it('CONTINUE_AND_REPLACE on headers replaces the body, strips content-length and skips the body message', async () => {
    const { res, seen, ep } = await run((m) =>
      m.request === 'request_headers'
        ? { request_headers: { response: { status: 'CONTINUE_AND_REPLACE', body_mutation: { body: Buffer.from('{"translated":true}') } } } }
        : undefined,
    );
    expect(res.status).toBe(200);
    expect(seen!.body.toString()).toBe('{"translated":true}');
    expect(seen!.headers['content-length']).toBeUndefined();
    expect(ep.streams[0]!.kinds()).toEqual(['request_headers', 'response_headers', 'response_body']);
  });

  it('mutates the response: status, headers and a BUFFERED body with its content-length', async () => {
    const { res } = await run((m) => {
      if (m.request === 'response_headers') return { response_headers: { response: { header_mutation: { set_headers: [setHeader(':status', '201'), setHeader('x-resp', '1')] } } } };
      if (m.request === 'response_body') {
        return { response_body: { response: { header_mutation: { set_headers: [setHeader('content-length', '4')] }, body_mutation: { body: Buffer.from('done') } } } };
      }
      return undefined;
    });
    expect(res.status).toBe(201);
    expect(res.headers['x-resp']).toBe('1');
    expect(res.text).toBe('done');
    expect(res.headers['content-length']).toBe('4');
  });
});

describe('clear_route_cache', () => {
  const routes = [
    { name: 'to_a', match: { prefix: '/', headers: [{ name: 'x-route', string_match: { exact: 'a' } }] }, route: { cluster: 'a' } },
    { name: 'by_header', match: { prefix: '/', headers: [{ name: 'x-gateway-cluster', present_match: true }] }, route: { cluster_header: 'x-gateway-cluster' } },
    { name: 'default', match: { prefix: '/' }, route: { cluster: 'backend' } },
  ];

  async function routed(hook: Hook, extProc: Record<string, unknown> = {}) {
    const ep = await startScriptedExtProc(autoRespond(hook));
    const mk = (name: string) => startUpstream((_r, res) => json(res, 200, { upstream: name }));
    const [a, b, backend] = await Promise.all([mk('a'), mk('b'), mk('backend')]);
    const envoy = await standinFor(
      ep,
      backend.url,
      { routes, clusters: [staticCluster('a', 1), staticCluster('b', 1)], extProc: { processing_mode: BUFFERED, ...extProc } },
      { clusterEndpoints: { a: a.url, b: b.url } },
    );
    cleanup.push(() => ep.close(), () => a.close(), () => b.close(), () => backend.close(), () => envoy.close());
    const res = await request(`${envoy.url}/x`, { body: '{}' });
    return { res, upstream: res.status === 200 ? (JSON.parse(res.text).upstream as string) : undefined, envoy };
  }

  const setRoute = (clear: boolean, where: 'request_headers' | 'request_body' = 'request_headers'): Hook =>
    (m) => (m.request === where ? { [where]: { response: { header_mutation: { set_headers: [setHeader('x-route', 'a')] }, clear_route_cache: clear } } } : undefined);

  it('re-matches routes when the mutation and clear_route_cache come together', async () => {
    expect((await routed(setRoute(true))).upstream).toBe('a');
    expect((await routed(setRoute(true, 'request_body'))).upstream).toBe('a');
  });

  it('keeps the first route without clear_route_cache, or without a header mutation', async () => {
    expect((await routed(setRoute(false))).upstream).toBe('backend');
    const noMutation = await routed((m) => (m.request === 'request_headers' ? { request_headers: { response: { clear_route_cache: true } } } : undefined));
    expect(noMutation.upstream).toBe('backend');
    expect(noMutation.envoy.stats.counter('ext_proc.clear_route_cache_ignored')).toBe(1);
  });

  it('follows route_cache_action CLEAR and RETAIN', async () => {
    expect((await routed(setRoute(false), { route_cache_action: 'CLEAR' })).upstream).toBe('a');
    const retained = await routed(setRoute(true), { route_cache_action: 'RETAIN' });
    expect(retained.upstream).toBe('backend');
    expect(retained.envoy.stats.counter('ext_proc.clear_route_cache_disabled')).toBe(1);
  });

  it('lets a cluster_header route read the mutated header', async () => {
    const pick = (cluster: string): Hook => (m) =>
      m.request === 'request_body'
        ? { request_body: { response: { header_mutation: { set_headers: [setHeader('x-gateway-cluster', cluster)] }, clear_route_cache: true } } }
        : undefined;
    expect((await routed(pick('b'))).upstream).toBe('b');
    const unknown = await routed(pick('nope'));
    expect(unknown.res.status).toBe(503); // cluster_not_found_response_code default
  });
});
