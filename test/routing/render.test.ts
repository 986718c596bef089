/**
 * render-envoy: the bootstrap rendered from a gateway config passes the Envoy proto validator,
 * runs in the stand-in's strict reader, and carries each chain's steps as priorities.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderEnvoy } from '../../extproc/envoy-render/render.js';
import { renderEnvoyCommand } from '../../extproc/envoy-render/command.js';
import { parseBootstrap } from '../envoy-standin/config/index.js';
import { config } from './fixtures.js';

const root = join(import.meta.dirname, '../..');
const validator = join(root, '../shared/tools/validate-envoy-yaml');
const dir = mkdtempSync(join(tmpdir(), 'render-envoy-'));
type Any = Record<string, any>;

async function validate(yaml: string, name: string): Promise<string> {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  const { stdout } = await promisify(execFile)('bash', [validator, file]);
  return stdout;
}

describe('renderEnvoy', () => {
  const cfg = config();
  const yaml = renderEnvoy(cfg);
  const doc = parse(yaml) as Any;
  const clusters: Any[] = doc.static_resources.clusters;
  const cluster = (n: string): Any => clusters.find((c) => c.name === n) ?? {};

  it('passes validate-envoy-yaml', async () => {
    expect(await validate(yaml, 'fixture.yaml')).toMatch(/OK: parsed strictly/);
  }, 30_000);

  it('loads in the stand-in (which refuses any field it does not implement)', () => {
    const b = parseBootstrap(doc);
    expect(b.clusters.get('llm_chain')!.priorities).toHaveLength(4);
  });

  it('has one cluster per route and start step, each step a priority with its metadata and API host', () => {
    for (const r of cfg.routes) {
      const steps = [r.model, ...r.fallback];
      for (let k = 0; k < steps.length; k++) {
        // The default (last) route's whole chain keeps the conventional name llm_chain.
        const name = k === 0 && r === cfg.routes[cfg.routes.length - 1] ? 'llm_chain' : `chain_${r.name}_from_${k}`;
        const c = cluster(name);
        expect(c.name, name).toBe(name);
        const eps = c.load_assignment.endpoints as Any[];
        expect(eps.map((e) => e.priority)).toEqual(steps.slice(k).map((_, i) => i));
        eps.forEach((e, i) => {
          const md = e.lb_endpoints[0].metadata.filter_metadata.ai_gateway;
          expect(md.step).toBe(k + i);
          expect(md.route).toBe(r.name);
        });
      }
    }
    const c = cluster('llm_chain');
    expect(c.load_assignment.endpoints.map((e: Any) => e.lb_endpoints[0].endpoint.hostname)).toEqual([
      'api.anthropic.com',
      'api.openai.com',
      'api.anthropic.com',
      'api.mistral.ai',
    ]);
    expect(c.load_assignment.endpoints[1].lb_endpoints[0].metadata.filter_metadata.ai_gateway).toEqual({
      route: 'default-chain',
      step: 1,
      model: 'gpt-4o',
      provider: 'openai',
    });
    // TLS with SNI per endpoint, and the per-attempt ext_proc on every chain cluster.
    for (const ch of clusters.filter((x) => x.name.startsWith('chain_'))) {
      expect(ch.transport_socket.typed_config.auto_host_sni).toBe(true);
      const filters = ch.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].http_filters;
      expect(filters.map((f: Any) => f.name)).toEqual(['envoy.filters.http.ext_proc', 'envoy.filters.http.header_mutation', 'envoy.filters.http.upstream_codec']);
    }
    expect(cluster('openai').transport_socket.typed_config.sni).toBe('api.openai.com');
  });

  it('routes: the selected cluster by header, else the default chain with its own retry policy', () => {
    const routes: Any[] = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
    expect(routes.map((r) => r.name)).toEqual(['chat_completions_pinned', 'messages_pinned', 'embeddings_pinned', 'responses_pinned', 'chat_completions_chain', 'messages_chain']);
    const pinned = routes[0]!.route;
    expect(pinned.cluster_header).toBe('x-gateway-cluster');
    expect(pinned.retry_policy.retry_priority.name).toBe('envoy.retry_priorities.previous_priorities');
    // Common to every route: over-budget retries on 429 and connect failures only.
    expect(pinned.retry_policy.retry_on).toBe('connect-failure,retriable-status-codes');
    expect(pinned.retry_policy.retriable_status_codes).toEqual([429]);
    const def = routes[4]!.route;
    expect(def.cluster).toBe('llm_chain');
    expect(def.retry_policy).toMatchObject({ num_retries: 3, per_try_timeout: '30s', retriable_status_codes: [429, 500, 502, 503, 504, 529] });
  });

  it('renders a config without routes (providers only) validly', async () => {
    const bare = renderEnvoy(config({ routes: [] }));
    expect(await validate(bare, 'bare.yaml')).toMatch(/OK/);
    expect(bare).not.toMatch(/name: "?chain_/);
  }, 30_000);

  it('refuses clusters that clash', () => {
    const clash = config({ providers: { openai: { api: 'openai', cluster: 'x' }, anthropic: { api: 'anthropic', cluster: 'x' }, mistral: { api: 'mistral', cluster: 'mistral' } } });
    expect(() => renderEnvoy(clash)).toThrow(/cluster "x" is shared/);
  });
});

describe('renderEnvoyCommand', () => {
  const run = async (argv: string[]) => {
    let out = '';
    let err = '';
    const code = await renderEnvoyCommand(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), env: {} });
    return { code, out, err };
  };

  it('prints the bootstrap for the shipped config, valid for Envoy', async () => {
    const r = await run(['--config', join(root, 'config/gateway.yaml')]);
    expect(r.code).toBe(0);
    expect(await validate(r.out, 'shipped.yaml')).toMatch(/OK/);
    expect(r.out).toContain('name: llm_chain');
  }, 30_000);

  it('names config problems and bad usage with exit codes', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'providers: { openai: { api: openai, cluster: openai } }\nmodels: { a: { provider: openai } }\nroutes: [{ model: b }]\n');
    expect(await run(['--config', bad])).toMatchObject({ code: 1, err: expect.stringContaining('routes[0].model: unknown model "b"') });
    expect((await run([])).code).toBe(2);
    expect((await run(['--bogus'])).code).toBe(2);
    const out = join(dir, 'out.yaml');
    expect((await run([`--config=${join(root, 'config/gateway.yaml')}`, '--out', out])).code).toBe(0);
  });
});
