/**
 * The stand-in runs the shipped envoy/envoy.yaml, and refuses what it does not implement, naming
 * the field — so the config we ship is the config the tests exercise.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEndpointOverrides, parseBootstrap, UnsupportedConfigError } from '../envoy-standin/config/index.js';
import { Chunker, Prng } from '../envoy-standin/chunker.js';
import { ClusterResources, HostSelector, parseRetryOn, RetryState } from '../envoy-standin/retry.js';
import { HeaderMap } from '../envoy-standin/headers.js';
import { StandinStats } from '../envoy-standin/stats.js';
import { startStandin } from '../envoy-standin/standin.js';
import { loadShippedDoc, SHIPPED_ENVOY_YAML, testBootstrap } from './helpers.js';
import { repoRoot } from '../envoy-standin/proto.js';

const hcmOf = (doc: Record<string, any>) => doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const clusterOf = (doc: Record<string, any>, name: string) => doc.static_resources.clusters.find((c: any) => c.name === name);

describe('the shipped envoy/envoy.yaml', () => {
  it('loads completely into the stand-in model', () => {
    const cfg = parseBootstrap(loadShippedDoc());
    const l = cfg.listeners[0]!;
    expect(l.port).toBe(8080);
    expect(l.bufferLimitBytes).toBe(52428800);
    const [extProc, observer, router] = l.hcm.httpFilters;
    expect(router!.type).toBe('router');
    // pipeline.streamObserver in config/gateway.yaml: a send-and-go copy for observing stages.
    if (observer?.type !== 'ext_proc') throw new Error('second filter must be the observability ext_proc');
    expect(observer.config.observabilityMode).toBe(true);
    if (extProc?.type !== 'ext_proc') throw new Error('first filter must be ext_proc');
    const e = extProc.config;
    expect(e.grpcService.clusterName).toBe('ext_proc');
    expect(e.processingMode).toMatchObject({
      request_header_mode: 'SEND',
      request_body_mode: 'BUFFERED',
      response_header_mode: 'SEND',
      response_body_mode: 'BUFFERED',
      request_trailer_mode: 'SKIP',
      response_trailer_mode: 'SKIP',
    });
    expect(e.allowModeOverride).toBe(true);
    expect(e.failureModeAllow).toBe(false);
    expect(e.messageTimeoutMs).toBeGreaterThan(200);
    expect(e.maxMessageTimeoutMs).toBeGreaterThan(e.messageTimeoutMs);
    expect(e.mutationRules.allow_envoy).toBe(true);
    expect(e.receivingNamespaces).toEqual(['ai_gateway']);

    // A client must not pick the cluster (route_config.internal_only_headers).
    expect(l.hcm.internalOnlyHeaders).toEqual(['x-gateway-cluster']);

    const routes = l.hcm.virtualHosts[0]!.routes;
    expect(routes.map((r) => r.name)).toEqual(['chat_completions_pinned', 'messages_pinned', 'embeddings_pinned', 'responses_pinned', 'chat_completions_chain', 'messages_chain']);
    expect(routes[0]!.clusterHeader).toBe('x-gateway-cluster');
    expect(routes[4]!.cluster).toBe('llm_chain');
    for (const r of routes) {
      expect(r.timeoutMs).toBeGreaterThanOrEqual(600_000);
      expect(r.retryPolicy!.perTryIdleTimeoutMs).toBeGreaterThan(0);
    }
    expect(routes[4]!.retryPolicy!.previousPrioritiesUpdateFrequency).toBe(1);
    expect(parseRetryOn(routes[4]!.retryPolicy!.retryOn).unknown).toEqual([]);

    // The default route's chain from config/gateway.yaml: one priority per step.
    const chain = cfg.clusters.get('llm_chain')!;
    expect(chain.priorities.map((p) => p.map((ep) => ep.metadata.ai_gateway!.provider))).toEqual([['anthropic'], ['openai'], ['anthropic'], ['mistral']]);
    expect(chain.priorities.map((p) => p[0]!.metadata.ai_gateway!.model)).toEqual(['claude-opus-4', 'gpt-4o', 'claude-sonnet-4', 'mistral-large']);
    expect(chain.upstreamFilters.map((f) => f.type)).toEqual(['ext_proc', 'header_mutation']);
    expect(cfg.clusters.get('ext_proc')!.protocol).toBe('http2');
    // Under Node's HTTP/2 reset-flood limit (~1000 resets per connection).
    expect(cfg.clusters.get('ext_proc')!.maxRequestsPerConnection).toBe(900);
    expect(cfg.clusters.get('llm_chain')!.maxRequestsPerConnection).toBe(0); // no limit
    for (const p of ['openai', 'anthropic', 'mistral']) expect(cfg.clusters.get(p)!.tls).toBe(true);
  });

  it('passes the strict Envoy schema validator', (ctx) => {
    const tool = path.join(repoRoot, '..', 'shared', 'tools', 'validate-envoy-yaml');
    if (!fs.existsSync(tool)) ctx.skip();
    const r = spawnSync(tool, [SHIPPED_ENVOY_YAML], { encoding: 'utf8' });
    // Exit 2: the tool could not get its Python dependencies on this machine.
    if (r.status === 2 && /needs Debian/.test(r.stdout)) ctx.skip();
    expect(r.stdout).toContain('OK');
    expect(r.status).toBe(0);
  });

  it('starts with the ext_proc and provider addresses overridden', async () => {
    const envoy = await startStandin({
      envoyYamlPath: SHIPPED_ENVOY_YAML,
      extProcAddress: '127.0.0.1:1',
      clusterEndpoints: { openai: 'http://127.0.0.1:2', llm_chain: [['http://127.0.0.1:3'], ['http://127.0.0.1:4'], ['http://127.0.0.1:5'], ['http://127.0.0.1:5']] },
    });
    try {
      expect(envoy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const chain = envoy.config.clusters.get('llm_chain')!;
      expect(chain.priorities[1]![0]).toMatchObject({ host: '127.0.0.1', port: 4, hostname: 'api.openai.com' });
      expect(envoy.config.clusters.get('ext_proc')!.priorities[0]![0]).toMatchObject({ host: '127.0.0.1', port: 1 });
    } finally {
      await envoy.close();
    }
  });
});

describe('refusing what is not implemented', () => {
  const refuse = (mutate: (doc: Record<string, any>) => void, pathInMessage: string | RegExp) => {
    const doc = loadShippedDoc();
    mutate(doc);
    expect(() => parseBootstrap(doc)).toThrow(UnsupportedConfigError);
    expect(() => parseBootstrap(doc)).toThrow(pathInMessage);
  };

  it('names the path of an unknown field', () => {
    refuse((d) => (clusterOf(d, 'llm_chain').outlier_detection = { consecutive_5xx: 1 }), 'static_resources.clusters[1].outlier_detection');
    refuse((d) => (hcmOf(d).http_filters[0].typed_config.forward_rules = {}), /http_filters\[0\]\.typed_config\.forward_rules/);
    refuse((d) => (hcmOf(d).skip_xff_append = true), /typed_config\.skip_xff_append/);
    refuse((d) => (hcmOf(d).route_config.virtual_hosts[0].routes[2].route.retry_policy.rate_limited_retry_back_off = {}), /retry_policy\.rate_limited_retry_back_off/);
    refuse((d) => (d.overload_manager = {}), 'bootstrap.overload_manager');
    refuse(
      (d) => (clusterOf(d, 'ext_proc').typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].common_http_protocol_options.idle_timeout = '1s'),
      /common_http_protocol_options\.idle_timeout/,
    );
    refuse((d) => (hcmOf(d).route_config.response_headers_to_remove = ['server']), /route_config\.response_headers_to_remove/);
  });

  it('refuses FULL_DUPLEX_STREAMED, trailer SEND, unknown attributes, operators and filters', () => {
    refuse((d) => (hcmOf(d).http_filters[0].typed_config.processing_mode.response_body_mode = 'FULL_DUPLEX_STREAMED'), /response_body_mode: FULL_DUPLEX_STREAMED is not implemented/);
    refuse((d) => (hcmOf(d).http_filters[0].typed_config.processing_mode.request_trailer_mode = 'SEND'), /request_trailer_mode: trailer processing/);
    refuse((d) => (hcmOf(d).http_filters[0].typed_config.request_attributes = ['source.address']), /attribute expression "source.address"/);
    refuse((d) => (hcmOf(d).access_log[0].typed_config.log_format.json_format.x = '%START_TIME%'), /%START_TIME%/);
    refuse(
      (d) =>
        hcmOf(d).http_filters.unshift({ name: 'envoy.filters.http.buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer' } }),
      /filter type .*buffer.v3.Buffer is not supported/,
    );
    refuse((d) => {
      const po = clusterOf(d, 'llm_chain').typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
      po.http_filters.pop(); // upstream_codec must stay last
    }, /upstream_codec/);
  });

  it('refuses a fragment with an unknown field', () => {
    const doc = testBootstrap({ extProc: { procesing_mode: {} } });
    expect(() => parseBootstrap(doc)).toThrow(/http_filters\[0\]\.typed_config\.procesing_mode/);
  });

  it('accepts unknown retry_on tokens as Envoy does (ignored)', () => {
    const doc = testBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'backend', retry_policy: { retry_on: '5xx,rest-before-request' } } }] });
    const cfg = parseBootstrap(doc);
    expect(parseRetryOn(cfg.listeners[0]!.hcm.virtualHosts[0]!.routes[0]!.retryPolicy!.retryOn)).toEqual({ bits: 1, unknown: ['rest-before-request'] });
  });

  it('checks the shape of endpoint overrides', () => {
    const cfg = parseBootstrap(loadShippedDoc());
    expect(() => applyEndpointOverrides(cfg, { llm_chain: [['http://127.0.0.1:1']] })).toThrow(/expected \[1,1,1,1\]/);
    expect(() => applyEndpointOverrides(cfg, { nope: 'http://x:1' })).toThrow(/no such cluster/);
  });
});

describe('chunker', () => {
  it('cuts at seeded offsets whatever the input boundaries, and pieces reassemble', () => {
    const data = Buffer.from('data: {"x":"héllo 你好 🎉"}\n\n'.repeat(40));
    const whole = new Chunker(new Prng(5)).split(data);
    const parts: Buffer[] = [];
    const c = new Chunker(new Prng(5));
    for (let i = 0; i < data.length; i += 97) parts.push(...c.split(data.subarray(i, i + 97)));
    expect(Buffer.concat(whole).equals(data)).toBe(true);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    // Cut points of the seeded run are a subset of the cut points with extra input boundaries.
    const cuts = (bs: Buffer[]) => bs.reduce<number[]>((acc, b) => [...acc, (acc[acc.length - 1] ?? 0) + b.length], []);
    const extra = new Set(cuts(parts));
    expect(cuts(whole).every((x) => extra.has(x))).toBe(true);
    expect(whole.some((b) => b.length < 4)).toBe(true);
    expect(new Chunker(new Prng(6)).split(data).map((b) => b.length)).not.toEqual(whole.map((b) => b.length));
  });
});

describe('host selection and back-off', () => {
  const cluster = (hosts: number[][]) => {
    const doc = testBootstrap({
      clusters: [
        {
          name: 'multi',
          type: 'STATIC',
          load_assignment: {
            cluster_name: 'multi',
            endpoints: hosts.map((ports, priority) => ({
              priority,
              lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } })),
            })),
          },
        },
      ],
    });
    return parseBootstrap(doc).clusters.get('multi')!;
  };

  it('previous_hosts re-selects a host not tried yet by this request', () => {
    const c = cluster([[1, 2]]);
    for (const previousHosts of [true, false]) {
      const shared = new ClusterResources();
      const mine = new HostSelector(c, shared, new Prng(1), undefined, previousHosts, 3);
      const other = new HostSelector(c, shared, new Prng(2), undefined, previousHosts, 3);
      const first = mine.choose();
      mine.onHostAttempted(first);
      other.choose(); // another request advances the round robin
      const second = mine.choose();
      expect(first.endpoint.port).toBe(1);
      expect(second.endpoint.port).toBe(previousHosts ? 2 : 1);
    }
  });

  it('previous_priorities with update_frequency 2 moves on after two attempts', () => {
    const c = cluster([[1], [2]]);
    const s = new HostSelector(c, new ClusterResources(), new Prng(1), 2, false, 1);
    const seq: number[] = [];
    for (let i = 0; i < 4; i++) {
      const h = s.choose();
      s.onHostAttempted(h);
      seq.push(h.priority);
    }
    expect(seq).toEqual([0, 0, 1, 1]);
  });

  it('jittered exponential back-off stays within base·(2^n − 1) and max_interval', () => {
    const c = cluster([[1]]);
    const policy = { retryOn: '5xx', numRetries: 10, perTryTimeoutMs: 0, perTryIdleTimeoutMs: 0, retriableStatusCodes: [], backOffBaseMs: 100, backOffMaxMs: 500, previousHostsPredicate: false, hostSelectionRetryMaxAttempts: 1 };
    const rs = RetryState.create(policy, new HeaderMap(), c, new ClusterResources(), new StandinStats(), new Prng(9))!;
    const bounds = [100, 300, 500, 500, 500];
    for (const b of bounds) {
      const v = rs.nextBackOffMs();
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(b + 1);
    }
  });
});
