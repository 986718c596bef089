/**
 * Rules every Envoy config the project ships must follow (docs/envoy-versions.md), checked on each
 * file found in the repository — so a config added later (Kubernetes, Istio EnvoyFilter renders)
 * is checked too — plus the single pinned Envoy image. Envoy YAML carried inside a Kubernetes
 * ConfigMap (data entries) is parsed and checked like a file; in an Istio EnvoyFilter the ext_proc
 * cluster is Istio's own, so its settings are found in the CLUSTER patch that matches it by name.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { PINNED_ENVOY_VERSION } from '../envoy-standin/version.js';

const root = join(import.meta.dirname, '../..');
type Any = Record<string, any>;
const SKIP = new Set(['node_modules', '.git', 'dist', 'coverage']);

/** Every YAML file in the repository that carries Envoy config (an HCM or an ext_proc filter). */
function envoyConfigFiles(dir = root): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    if (SKIP.has(e)) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...envoyConfigFiles(p));
    else if (/\.ya?ml$/.test(e) && /filters\.http\.ext_proc\.v3\.ExternalProcessor|http_connection_manager\.v3\.HttpConnectionManager/.test(readFileSync(p, 'utf8'))) out.push(p);
  }
  return out;
}

/** All objects (at any depth) of all YAML documents in a file. */
function objectsIn(file: string): Any[] {
  const found: Any[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      found.push(v as Any);
      Object.values(v as Any).forEach(walk);
    }
  };
  for (const d of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const doc = d.toJS() as Any | null;
    walk(doc);
    // A ConfigMap carrying an Envoy bootstrap: check the embedded YAML too.
    if (doc?.kind === 'ConfigMap') {
      for (const [key, text] of Object.entries((doc.data ?? {}) as Record<string, string>)) {
        if (/\.ya?ml$/.test(key)) for (const e of parseAllDocuments(text)) walk(e.toJS());
      }
    }
  }
  return found;
}

const files = envoyConfigFiles();

describe('every shipped Envoy config', () => {
  it('is found (envoy/envoy.yaml at least)', () => {
    expect(files.map((f) => relative(root, f))).toContain('envoy/envoy.yaml');
  });

  for (const file of files) {
    const name = relative(root, file);
    const objs = objectsIn(file);

    it(`${name}: the cluster of each ext_proc grpc_service drains connections before Node's ~1,000-reset limit`, () => {
      const grpcClusters = new Set(objs.filter((o) => o.envoy_grpc?.cluster_name).map((o) => o.envoy_grpc.cluster_name as string));
      expect(grpcClusters.size).toBeGreaterThan(0);
      for (const c of grpcClusters) {
        const cluster =
          objs.find((o) => o.name === c && o.load_assignment) ??
          // Istio builds the cluster; the EnvoyFilter patches it (applyTo CLUSTER, matched by name).
          objs.find((o) => o.applyTo === 'CLUSTER' && o.match?.cluster?.name === c)?.patch?.value;
        expect(cluster, `cluster ${c}`).toBeDefined();
        const n = cluster!.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']?.common_http_protocol_options?.max_requests_per_connection;
        expect(n, `${c}.max_requests_per_connection`).toBeGreaterThan(0);
        expect(n).toBeLessThanOrEqual(900);
      }
    });

    it(`${name}: edge HCM settings decide who is internal, and the router suppresses its headers`, () => {
      for (const hcm of objs.filter((o) => String(o['@type']).endsWith('HttpConnectionManager'))) {
        expect(hcm.use_remote_address).toBe(true);
        expect(hcm.xff_num_trusted_hops ?? 0).toBe(0);
        expect(hcm.internal_address_config).toBeDefined();
        expect(hcm.internal_address_config.cidr_ranges ?? []).toEqual([]);
        expect(hcm.route_config.internal_only_headers).toContain('x-gateway-cluster');
        expect(hcm.route_config.virtual_hosts.every((v: Any) => !v.include_request_attempt_count)).toBe(true);
        const router = hcm.http_filters.find((f: Any) => String(f.typed_config?.['@type']).endsWith('router.v3.Router'));
        expect(router.typed_config.suppress_envoy_headers).toBe(true);
        // Envoy's own errors in the client's dialect (local replies skip ext_proc).
        const paths = JSON.stringify(hcm.local_reply_config?.mappers ?? []);
        for (const code of [503, 504, 413]) expect(paths).toContain(`"default_value":${code}`);
        expect(paths).toContain('/v1/messages');
      }
    });
  }
});

describe('the pinned Envoy', () => {
  it('docker-compose.yml pins exactly one Envoy image tag, of the release line the stand-in models', () => {
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    const tags = [...compose.matchAll(/image:\s*envoyproxy\/envoy:(\S+)/g)].map((m) => m[1]!);
    expect(tags).toHaveLength(1);
    expect(tags[0]).toMatch(/^v\d+\.\d+\.\d+$/); // a release, never -latest or dev
    expect(tags[0]!.startsWith(`v${PINNED_ENVOY_VERSION}.`)).toBe(true);
    const doc = readFileSync(join(root, 'docs/envoy-versions.md'), 'utf8');
    expect(doc).toContain(`envoyproxy/envoy:${tags[0]}`);
  });
});
