/**
 * deploy/istio: the Envoy fragments inside the EnvoyFilters are validated against Envoy's protos
 * with ../shared/tools/validate-envoy-yaml (each patch value wrapped in the message it patches:
 * HttpFilter, VirtualHost, Cluster; the ext_proc config also on its own), and the Istio resources
 * agree with envoy/envoy.yaml, the Kubernetes Service and the gateway config: the same ext_proc
 * settings, the ext_proc cluster Istio builds for Service llm-extproc, the 900-stream connection
 * limit, the provider hosts, and a caller identity the gateway's identity stage accepts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { identityOptionsSchema, resolveIdentity } from '../../extproc/identity/index.js';
import { type Any, k8sGatewayConfig, k8sObjects, root } from './manifests.js';

const validator = join(root, '../shared/tools/validate-envoy-yaml');
const istio = k8sObjects('deploy/istio').map((d) => ({ ...d.value, file: d.file }) as Any);
const filters = istio.filter((o) => o.kind === 'EnvoyFilter');
const patches = (applyTo: string): { ef: Any; p: Any }[] => filters.flatMap((ef) => ef.spec.configPatches.filter((p: Any) => p.applyTo === applyTo).map((p: Any) => ({ ef, p })));
const envoy = parse(readFileSync(join(root, 'envoy/envoy.yaml'), 'utf8')) as Any;
const hcm = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const routerExtProc = hcm.http_filters.find((f: Any) => f.name === 'envoy.filters.http.ext_proc').typed_config;
const envoyExtProcCluster = envoy.static_resources.clusters.find((c: Any) => c.name === 'ext_proc');
const gwService = k8sObjects('deploy/kubernetes').find((d) => d.value.kind === 'Service' && d.value.metadata.name === 'llm-extproc')!.value;
const config = k8sGatewayConfig();
const ISTIO_EXTPROC_CLUSTER = `outbound|${config.server.port}||${gwService.metadata.name}.${gwService.metadata.namespace}.svc.cluster.local`;
const PROVIDER_HOSTS = ['api.openai.com', 'api.anthropic.com', 'api.mistral.ai'];

const dir = mkdtempSync(join(tmpdir(), 'istio-fragments-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the validator on `fragments` as `type`; resolves to its exit code and output. */
function validate(type: string, fragments: { name: string; value: unknown }[]): { code: number | null; out: string } {
  const files = fragments.map((f, i) => {
    const file = join(dir, `${type.split('.').at(-1)}-${i}-${f.name.replace(/[^a-z0-9]+/gi, '_')}.yaml`);
    writeFileSync(file, stringify(f.value));
    return file;
  });
  const r = spawnSync('bash', [validator, '--type', type, ...files], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A message given with its "@type" (an Any's content) as the message itself. */
const withoutType = (o: Any): Any => Object.fromEntries(Object.entries(o).filter(([k]) => k !== '@type'));

describe('deploy/istio Envoy fragments validate against Envoy\'s protos', () => {
  it('finds the EnvoyFilters of both patterns', () => {
    expect(filters.map((f) => f.metadata.name).sort()).toEqual(['llm-extproc-egress', 'llm-extproc-sidecar']);
  });

  it('HTTP_FILTER patch values are HttpFilters (ext_proc, header_mutation), and the ext_proc config on its own', () => {
    const hf = patches('HTTP_FILTER');
    const r = validate('envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter', hf.map(({ ef, p }) => ({ name: `${ef.metadata.name}-${p.patch.value.name}`, value: p.patch.value })));
    expect(r.code, r.out).toBe(0);
    const ext = hf.filter(({ p }) => p.patch.value.name === 'envoy.filters.http.ext_proc');
    const r2 = validate('envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor', ext.map(({ ef, p }) => ({ name: ef.metadata.name, value: withoutType(p.patch.value.typed_config) })));
    expect(r2.code, r2.out).toBe(0);
  });

  it('VIRTUAL_HOST patch values merge into a valid VirtualHost', () => {
    const vh = patches('VIRTUAL_HOST');
    const r = validate('envoy.config.route.v3.VirtualHost', vh.map(({ ef, p }) => ({ name: `${ef.metadata.name}-${p.match.routeConfiguration.vhost.name}`, value: { name: p.match.routeConfiguration.vhost.name, domains: ['*'], ...p.patch.value } })));
    expect(r.code, r.out).toBe(0);
  });

  it('CLUSTER patch values merge into a valid Cluster', () => {
    const cl = patches('CLUSTER');
    const r = validate('envoy.config.cluster.v3.Cluster', cl.map(({ ef, p }) => ({ name: ef.metadata.name, value: { name: p.match.cluster.name, ...p.patch.value } })));
    expect(r.code, r.out).toBe(0);
  });

  it('the validator rejects a broken fragment (the check is not vacuous)', () => {
    const value = structuredClone(patches('HTTP_FILTER')[0]!.p.patch.value);
    value.typed_config.processing_mode.request_body_mode = 'BUFFERD';
    const r = validate('envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter', [{ name: 'broken', value }]);
    expect(r.code).toBe(1);
  });
});

describe('deploy/istio agrees with envoy.yaml, the Kubernetes Service and the gateway config', () => {
  it('each ext_proc filter has envoy.yaml\'s router-filter settings and calls the cluster Istio builds for Service llm-extproc', () => {
    const ext = patches('HTTP_FILTER').filter(({ p }) => p.patch.value.name === 'envoy.filters.http.ext_proc');
    expect(ext).toHaveLength(2);
    const { grpc_service: _g, ...expected } = routerExtProc;
    for (const { ef, p } of ext) {
      const { grpc_service, ...rest } = p.patch.value.typed_config;
      expect(rest, ef.metadata.name).toEqual(expected);
      expect(grpc_service.envoy_grpc.cluster_name).toBe(ISTIO_EXTPROC_CLUSTER);
      // Inserted before the router and off by default: only the providers' vhosts turn it on.
      expect(p.patch.operation).toBe('INSERT_BEFORE');
      expect(p.patch.value.disabled).toBe(true);
      expect(p.match.context).toBe(ef.metadata.name.endsWith('sidecar') ? 'SIDECAR_OUTBOUND' : 'GATEWAY');
    }
    const grpc = gwService.spec.ports.find((x: Any) => x.port === config.server.port);
    expect(grpc.appProtocol, 'Istio builds an HTTP/2 cluster for appProtocol grpc').toBe('grpc');
  });

  it('every disabled filter is enabled on exactly the provider virtual hosts of its EnvoyFilter', () => {
    for (const ef of filters) {
      const disabled = ef.spec.configPatches.filter((p: Any) => p.applyTo === 'HTTP_FILTER' && p.patch.value.disabled).map((p: Any) => p.patch.value.name);
      const vhosts = ef.spec.configPatches.filter((p: Any) => p.applyTo === 'VIRTUAL_HOST');
      expect(vhosts.map((p: Any) => p.match.routeConfiguration.vhost.name).sort()).toEqual(PROVIDER_HOSTS.map((h) => `${h}:80`).sort());
      for (const v of vhosts) {
        expect(v.match.context).toBe(ef.spec.configPatches[0].match.context);
        expect(Object.keys(v.patch.value.typed_per_filter_config).sort()).toEqual([...disabled].sort());
      }
    }
  });

  it('the ext_proc cluster keeps envoy.yaml\'s HTTP/2 and max_requests_per_connection, in the EnvoyFilters and the DestinationRule', () => {
    const opts = (c: Any) => c.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    const want = opts(envoyExtProcCluster).common_http_protocol_options.max_requests_per_connection;
    expect(want).toBe(900);
    const cl = patches('CLUSTER');
    expect(cl).toHaveLength(2);
    for (const { p } of cl) {
      expect(p.match.cluster.name).toBe(ISTIO_EXTPROC_CLUSTER);
      expect(opts(p.patch.value).common_http_protocol_options.max_requests_per_connection).toBe(want);
      expect(opts(p.patch.value).explicit_http_config.http2_protocol_options).toEqual(opts(envoyExtProcCluster).explicit_http_config.http2_protocol_options);
    }
    const dr = istio.find((o) => o.kind === 'DestinationRule' && o.spec.host === ISTIO_EXTPROC_CLUSTER.split('||')[1]);
    expect(dr?.spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection).toBe(want);
    expect(dr?.spec.trafficPolicy.tls.mode).toBe('ISTIO_MUTUAL');
  });

  it('ServiceEntries, TLS origination and VirtualServices cover the providers envoy.yaml calls', () => {
    const envoyHosts = new Set(
      envoy.static_resources.clusters.filter((c: Any) => c.transport_socket).flatMap((c: Any) => c.load_assignment.endpoints.flatMap((e: Any) => e.lb_endpoints.map((l: Any) => l.endpoint.hostname))),
    );
    expect([...envoyHosts].sort()).toEqual([...PROVIDER_HOSTS].sort());
    for (const host of PROVIDER_HOSTS) {
      const se = istio.find((o) => o.kind === 'ServiceEntry' && o.spec.hosts.includes(host));
      expect(se?.spec.ports, host).toEqual([{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 443 }]);
      const dr = istio.find((o) => o.kind === 'DestinationRule' && o.spec.host === host);
      expect(dr?.spec.trafficPolicy.portLevelSettings).toEqual([{ port: { number: 80 }, tls: { mode: 'SIMPLE', sni: host } }]);
      for (const pattern of ['sidecar', 'egress-gateway']) {
        const vs = istio.find((o) => o.kind === 'VirtualService' && o.file.includes(`/${pattern}/`) && o.spec.hosts.includes(host));
        const toProvider = vs?.spec.http.find((r: Any) => r.route[0].destination.host === host);
        expect(toProvider?.retries.retryOn, `${pattern} ${host}`).toContain('connect-failure');
        expect(toProvider.retries.retryOn).not.toContain('429');
        expect(toProvider.headers.request.remove).toEqual(expect.arrayContaining(['x-forwarded-client-cert', 'x-gateway-cluster']));
        expect(toProvider.timeout).toBe(hcm.route_config.virtual_hosts[0].routes[0].route.timeout);
      }
    }
  });

  it('the sidecar pattern\'s x-forwarded-client-cert names the calling workload the way the identity stage reads it', () => {
    const hm = patches('HTTP_FILTER').find(({ p }) => p.patch.value.name === 'envoy.filters.http.header_mutation')!.p.patch.value;
    const m = hm.typed_config.mutations.request_mutations[0].append;
    expect(m.header.key).toBe('x-forwarded-client-cert');
    expect(m.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
    // What Envoy substitutes from the sidecar's environment (set by Istio's injector).
    const sidecarEnv: Record<string, string> = { TRUST_DOMAIN: 'cluster.local', POD_NAMESPACE: 'shop', SERVICE_ACCOUNT: 'checkout' };
    const value = (m.header.value as string).replace(/%ENVIRONMENT\(([A-Z_]+)\)%/g, (_, n: string) => sidecarEnv[n]!);
    const stage = config.pipeline.stages.find((s) => typeof s === 'object' && (s as Any).name === 'identity') as Any;
    const { name: _n, ...opts } = stage;
    const headers: Record<string, string> = { 'x-forwarded-client-cert': value, 'x-caller-id': 'someone-else' };
    const r = resolveIdentity((n) => headers[n], identityOptionsSchema.parse(opts));
    expect(r).toEqual({ ok: true, identity: expect.objectContaining({ caller: 'spiffe://cluster.local/ns/shop/sa/checkout', source: 'xfcc', namespace: 'shop', serviceAccount: 'checkout' }) });
  });
});
