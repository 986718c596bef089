/**
 * docker-compose.yml, envoy/envoy.yaml, config/gateway.yaml and the Dockerfile cannot run here
 * (no Docker engine, no Envoy binary), so this test checks that they agree with each other on
 * names, ports, paths and limits — the mistakes that would only show on a real deployment.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfigFile } from '../../extproc/config/load.js';
import { builtinStages, stageCheck } from '../../extproc/stages/registry.js';

const root = join(import.meta.dirname, '../..');
const read = (f: string) => readFileSync(join(root, f), 'utf8');
type Any = Record<string, any>;
const compose = parse(read('docker-compose.yml')) as Any;
const envoy = parse(read('envoy/envoy.yaml')) as Any;
const dockerfile = read('Dockerfile');

const clusters: Any[] = envoy.static_resources.clusters;
const cluster = (name: string) => clusters.find((c) => c.name === name);
const endpointsOf = (c: Any): Any[] => c.load_assignment.endpoints.flatMap((e: Any) => e.lb_endpoints.map((l: Any) => l.endpoint.address.socket_address));

/** Every ext_proc filter config in the file (HCM and cluster upstream filters). */
function extProcFilters(): Any[] {
  const found: Any[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Any;
      if (typeof o['@type'] === 'string' && o['@type'].endsWith('ext_proc.v3.ExternalProcessor')) found.push(o);
      Object.values(o).forEach(walk);
    }
  };
  walk(envoy);
  return found;
}

describe('deployment files agree', async () => {
  const gatewayConfigFile = compose.services.extproc.volumes.find((v: string) => v.startsWith('./config/')).split(':')[0] as string;
  const gateway = await loadConfigFile(join(root, gatewayConfigFile), {}, [stageCheck(builtinStages)]);

  it('Envoy reaches the ext_proc server at the compose service name and the port the gateway listens on, over HTTP/2', () => {
    const c = cluster('ext_proc')!;
    expect(c).toBeDefined();
    const addr = endpointsOf(c)[0]!;
    expect(addr.address).toBe('extproc');
    expect(addr.port_value).toBe(gateway.server.port);
    expect(compose.services.extproc.expose.map(String)).toContain(String(gateway.server.port));
    expect(c.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config.http2_protocol_options).toBeDefined();
    for (const f of extProcFilters()) expect(f.grpc_service.envoy_grpc.cluster_name).toBe('ext_proc');
  });

  it('compose mounts the files the containers read', () => {
    expect(compose.services.envoy.volumes.some((v: string) => v.startsWith('./envoy/envoy.yaml:'))).toBe(true);
    const mountedAt = compose.services.extproc.volumes.find((v: string) => v.startsWith('./config/')).split(':')[1];
    expect(dockerfile).toContain(mountedAt);
  });

  it('the Envoy listener port is published', () => {
    const port = envoy.static_resources.listeners[0].address.socket_address.port_value;
    expect(compose.services.envoy.ports.map(String).some((p: string) => p.endsWith(`:${port}`) || p === String(port))).toBe(true);
  });

  it('every provider the gateway routes to has its Envoy cluster', () => {
    for (const [name, p] of Object.entries(gateway.providers)) expect(cluster(p.cluster), `cluster for provider ${name}`).toBeDefined();
  });

  it('the gateway accepts the largest body Envoy buffers', () => {
    const limit = envoy.static_resources.listeners[0].per_connection_buffer_limit_bytes ?? 1024 * 1024;
    expect(gateway.server.maxMessageBytes).toBeGreaterThan(limit);
  });

  it('Envoy accepts the dynamic metadata namespace the gateway writes', () => {
    const main = extProcFilters()[0]!;
    expect(main.metadata_options.receiving_namespaces.untyped).toContain('ai_gateway');
  });

  it('compose passes the provider keys the gateway config reads from the environment', () => {
    const env = compose.services.extproc.environment as Any;
    const uncommented = read(gatewayConfigFile).replace(/^\s*#.*$/gm, '');
    for (const key of uncommented.matchAll(/\$\{([A-Z_]+)/g)) expect(env, key[1]).toHaveProperty(key[1]!);
  });
});
