/**
 * docker-compose.yml's observability services agree with the files they mount and with each
 * other: the OpenTelemetry collector's ports, what Prometheus scrapes, Grafana's provisioning and
 * dashboards, and pinned images. (consistency.test.ts covers Envoy, the gateway, Redis, Postgres.)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfigFile } from '../../extproc/config/load.js';
import { builtinStages, stageCheck } from '../../extproc/stages/registry.js';
import { type Any, root } from './manifests.js';

const read = (f: string) => readFileSync(join(root, f), 'utf8');
const compose = parse(read('docker-compose.yml')) as Any;
const services = compose.services as Record<string, Any>;
/** host file → container path of a service's bind mounts. */
const mounts = (svc: string): Map<string, string> =>
  new Map((services[svc]!.volumes ?? []).filter((v: string) => v.startsWith('./')).map((v: string) => v.split(':').slice(0, 2) as [string, string]));
const mountedFile = (svc: string, containerPath: string): string => {
  const hit = [...mounts(svc)].find(([, c]) => c === containerPath);
  if (!hit) throw new Error(`${svc} mounts nothing at ${containerPath}`);
  return hit[0].slice(2);
};
const portOf = (hostPort: string) => Number(hostPort.split(':').at(-1));

describe('docker-compose.yml: the full stack', () => {
  it('runs Envoy, the gateway, Postgres with pgvector, Redis, the collector, Prometheus and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual(['envoy', 'extproc', 'grafana', 'otel-collector', 'postgres', 'prometheus', 'redis']);
    expect(services.postgres!.image).toBe('pgvector/pgvector:pg16');
    expect(services.extproc!.build.dockerfile).toBe('Dockerfile');
  });

  it('every image is pinned to a version (no latest, no bare name)', () => {
    for (const [name, s] of Object.entries(services)) if (s.image && !s.build) expect(s.image, name).toMatch(/^[^:]+:(?!latest$)[A-Za-z0-9._-]+$/);
  });

  it('every file or folder a service mounts exists in the repository', () => {
    for (const name of Object.keys(services)) for (const host of mounts(name).keys()) expect(existsSync(join(root, host)), `${name}: ${host}`).toBe(true);
  });

  it('the collector runs the mounted config, and exposes its OTLP and Prometheus ports', () => {
    const c = services['otel-collector']!;
    const configPath = (c.command as string[]).find((a) => a.startsWith('--config='))!.slice('--config='.length);
    const otel = parse(read(mountedFile('otel-collector', configPath))) as Any;
    const exposed = c.expose.map(Number);
    expect(exposed).toContain(portOf(otel.receivers.otlp.protocols.http.endpoint));
    expect(exposed).toContain(portOf(otel.receivers.otlp.protocols.grpc.endpoint));
    expect(exposed).toContain(portOf(otel.exporters.prometheus.endpoint));
    for (const p of Object.values(otel.service.pipelines) as Any[]) for (const e of [...p.receivers, ...p.exporters]) expect(otel.receivers[e] ?? otel.exporters[e], e).toBeDefined();
  });

  it('Prometheus scrapes compose services on ports they expose: the gateway\'s metrics and the collector', () => {
    const p = services.prometheus!;
    const file = (p.command as string[]).find((a) => a.startsWith('--config.file='))!.slice('--config.file='.length);
    const prom = parse(read(mountedFile('prometheus', file))) as Any;
    const targets = prom.scrape_configs.flatMap((j: Any) => j.static_configs.flatMap((s: Any) => s.targets as string[]));
    for (const t of targets) {
      const [host, port] = t.split(':');
      expect(services[host], `scrape target ${t}`).toBeDefined();
      expect(services[host]!.expose.map(Number), `scrape target ${t}`).toContain(Number(port));
    }
    expect(targets).toContain('extproc:9464');
    const otel = parse(read('deploy/otel-collector/otel-collector.yaml')) as Any;
    expect(targets).toContain(`otel-collector:${portOf(otel.exporters.prometheus.endpoint)}`);
  });

  it('Prometheus scrapes the gateway on the port its config serves metrics on, with compose\'s environment', async () => {
    const file = services.extproc!.volumes.find((v: string) => v.startsWith('./config/')).split(':')[0] as string;
    const env = Object.fromEntries(Object.entries(services.extproc!.environment as Record<string, string>).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]));
    const gateway = await loadConfigFile(join(root, file), env, [stageCheck(builtinStages)]);
    const usage = gateway.pipeline.stages.find((s) => typeof s === 'object' && (s as Any).name === 'usage') as Any | undefined;
    expect(usage?.metrics?.prometheus, `${file}: a usage stage with metrics.prometheus`).toBeDefined();
    const prom = parse(read('deploy/otel-collector/prometheus.yml')) as Any;
    const job = prom.scrape_configs.find((j: Any) => j.job_name === 'llm-gateway');
    expect(job.static_configs[0].targets).toEqual([`extproc:${usage!.metrics.prometheus.port}`]);
    expect(job.metrics_path).toBe(usage!.metrics.prometheus.path);
  });

  it('Grafana gets its datasource pointing at the compose Prometheus and the project\'s dashboards', () => {
    const ds = parse(read(mountedFile('grafana', '/etc/grafana/provisioning/datasources') + '/prometheus.yaml')) as Any;
    const url = new URL(ds.datasources[0].url);
    expect(services[url.hostname], url.hostname).toBeDefined();
    expect(services.prometheus!.ports.map(portOf)).toContain(Number(url.port));
    const dashProvisioning = parse(read(mountedFile('grafana', '/etc/grafana/provisioning/dashboards') + '/llm-gateway.yaml')) as Any;
    const dashDir = mountedFile('grafana', dashProvisioning.providers[0].options.path);
    const dashboards = readdirSync(join(root, dashDir)).filter((f) => f.endsWith('.json'));
    expect(dashboards.length).toBeGreaterThan(0);
    for (const d of dashboards) expect(JSON.parse(read(`${dashDir}/${d}`)).uid, d).toBeTruthy();
  });

  it('consoles are published on the host\'s loopback only', () => {
    for (const name of ['prometheus', 'grafana']) for (const p of services[name]!.ports as string[]) expect(p, name).toMatch(/^127\.0\.0\.1:/);
  });
});
