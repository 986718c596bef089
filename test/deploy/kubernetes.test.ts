/**
 * deploy/kubernetes agrees with itself, with the gateway config it carries and with the Envoy
 * config and image the rest of the project ships: probes, drain timing, the config mount that
 * hot reload depends on, ports, selectors, secrets by reference, and the standalone Envoy's
 * bootstrap being exactly render-envoy's output for the ConfigMap's gateway config.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type Any, K8S_EXTPROC_HOST, k8sEnvoyConfigMapText, k8sGatewayConfig, k8sGatewayConfigText, k8sObjects, root } from './manifests.js';

const objs = k8sObjects('deploy/kubernetes').map((d) => d.value);
const get = (kind: string, name: string): Any => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind} ${name} not found in deploy/kubernetes`);
  return o;
};
const gw = get('Deployment', 'llm-extproc');
const pod = gw.spec.template.spec;
const container = pod.containers.find((c: Any) => c.name === 'extproc');
const config = k8sGatewayConfig();
const usage = config.pipeline.stages.find((s) => typeof s === 'object' && (s as Any).name === 'usage') as Any | undefined;
const metricsPort = Number(usage?.metrics?.prometheus?.port);
const portNamed = (name: string) => container.ports.find((p: Any) => p.name === name)?.containerPort;
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('deploy/kubernetes', () => {
  it('the ConfigMap holds a gateway config the gateway accepts, with shared Redis and Postgres for several replicas', () => {
    expect(config.server.port).toBe(50051);
    const stages = JSON.stringify(config.pipeline.stages);
    expect(stages).toContain('"backend":"redis"');
    expect(stages).toContain('"kind":"postgres"');
    expect(metricsPort).toBe(9464);
  });

  it('every ${ENV} the config reads is given to the container, and secrets only by reference', () => {
    const env = new Map<string, Any>(container.env.map((e: Any) => [e.name, e]));
    const uncommented = k8sGatewayConfigText().replace(/#.*$/gm, '');
    const names = [...uncommented.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!);
    expect(names).toEqual(expect.arrayContaining(['REDIS_URL', 'DATABASE_URL', 'OPENAI_API_KEY']));
    for (const n of names) {
      expect(env.has(n), `env ${n}`).toBe(true);
      expect(env.get(n)!.value, `${n} must come from a Secret`).toBeUndefined();
      expect(env.get(n)!.valueFrom.secretKeyRef.key).toBe(n);
    }
    // A provider without its key is unavailable, not a crash loop; the shared backends are required.
    for (const n of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'MISTRAL_API_KEY']) expect(env.get(n)!.valueFrom.secretKeyRef.optional).toBe(true);
    for (const n of ['REDIS_URL', 'DATABASE_URL']) expect(env.get(n)!.valueFrom.secretKeyRef.optional ?? false).toBe(false);
  });

  it('gRPC probes ask the health service on the ext_proc port', () => {
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      expect(container[probe].grpc.port, probe).toBe(config.server.port);
      expect(typeof container[probe].grpc.service, probe).toBe('string');
    }
    expect(container.readinessProbe.grpc.service).toBe('envoy.service.ext_proc.v3.ExternalProcessor');
    expect(portNamed('grpc')).toBe(config.server.port);
    expect(portNamed('metrics')).toBe(metricsPort);
  });

  it('the pod outlives the drain: preStop sleep + server.shutdownGraceMs < terminationGracePeriodSeconds', () => {
    const sleep = Number(container.lifecycle.preStop.exec.command.at(-1));
    expect(sleep).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(sleep * 1000 + config.server.shutdownGraceMs);
  });

  it('the config is mounted as a directory (no subPath) where the container reads it, so hot reload sees ConfigMap updates', () => {
    const mount = container.volumeMounts.find((m: Any) => m.name === 'config');
    expect(mount.subPath).toBeUndefined();
    const arg = container.args[container.args.indexOf('--config') + 1] as string;
    expect(arg).toBe(`${mount.mountPath}/gateway.yaml`);
    const volume = pod.volumes.find((v: Any) => v.name === 'config');
    const cm = get('ConfigMap', volume.configMap.name);
    expect(Object.keys(cm.data)).toContain('gateway.yaml');
    expect(volume.configMap.items).toBeUndefined();
  });

  it('Services, PDB, HPA and NetworkPolicy select the gateway pods and use its ports', () => {
    const labels = gw.spec.template.metadata.labels;
    expect(matches(gw.spec.selector.matchLabels, labels)).toBe(true);
    for (const name of ['llm-extproc', 'llm-extproc-headless']) {
      const svc = get('Service', name);
      expect(matches(svc.spec.selector, labels), name).toBe(true);
      const grpc = svc.spec.ports.find((p: Any) => p.appProtocol === 'grpc');
      expect(grpc.port).toBe(config.server.port);
      expect(portNamed(grpc.targetPort)).toBe(config.server.port);
    }
    expect(get('Service', 'llm-extproc-headless').spec.clusterIP).toBe('None');
    const metrics = get('Service', 'llm-extproc').spec.ports.find((p: Any) => p.targetPort === 'metrics');
    expect(metrics.port).toBe(metricsPort);
    expect(matches(get('PodDisruptionBudget', 'llm-extproc').spec.selector.matchLabels, labels)).toBe(true);
    const hpa = get('HorizontalPodAutoscaler', 'llm-extproc');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'llm-extproc', apiVersion: 'apps/v1' });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(container.resources.requests.cpu, 'CPU utilisation needs a CPU request').toBeDefined();
    const np = get('NetworkPolicy', 'llm-extproc');
    expect(matches(np.spec.podSelector.matchLabels, labels)).toBe(true);
    const inPorts = np.spec.ingress.flatMap((r: Any) => r.ports.map((p: Any) => p.port));
    expect(inPorts.sort()).toEqual([config.server.port, metricsPort].sort());
    const envoyLabels = get('Deployment', 'llm-envoy').spec.template.metadata.labels;
    expect(np.spec.ingress[0].from.some((f: Any) => f.podSelector?.matchLabels && matches(f.podSelector.matchLabels, envoyLabels))).toBe(true);
    const outPorts = np.spec.egress.flatMap((r: Any) => r.ports.map((p: Any) => p.port));
    for (const p of [53, 6379, 5432, 443]) expect(outPorts).toContain(p);
  });

  it('the standalone Envoy runs the pinned image and the bootstrap render-envoy makes from the ConfigMap\'s config', () => {
    const envoy = get('Deployment', 'llm-envoy');
    const c = envoy.spec.template.spec.containers[0];
    const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as Any;
    expect(c.image).toBe(compose.services.envoy.image);
    const actual = readFileSync(join(root, 'deploy/kubernetes/envoy-configmap.yaml'), 'utf8');
    expect(actual, 'stale: run npx tsx test/deploy/render-k8s-envoy.ts').toBe(k8sEnvoyConfigMapText());
    const bootstrap = parse(get('ConfigMap', 'llm-envoy-config').data['envoy.yaml']) as Any;
    const extProc = bootstrap.static_resources.clusters.find((x: Any) => x.name === 'ext_proc');
    const addr = extProc.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(addr).toEqual({ address: K8S_EXTPROC_HOST, port_value: config.server.port });
    expect(K8S_EXTPROC_HOST.startsWith('llm-extproc-headless.llm-gateway.')).toBe(true);
    const listener = bootstrap.static_resources.listeners[0].address.socket_address.port_value;
    const svc = get('Service', 'llm-envoy');
    expect(c.ports.find((p: Any) => p.name === svc.spec.ports[0].targetPort).containerPort).toBe(listener);
    const mount = c.volumeMounts.find((m: Any) => m.name === 'envoy-config');
    expect(c.args[c.args.indexOf('-c') + 1]).toBe(`${mount.mountPath}/envoy.yaml`);
    expect(envoy.spec.template.spec.volumes.find((v: Any) => v.name === 'envoy-config').configMap.name).toBe('llm-envoy-config');
    // The gateway accepts the largest body this Envoy buffers.
    expect(config.server.maxMessageBytes).toBeGreaterThan(bootstrap.static_resources.listeners[0].per_connection_buffer_limit_bytes);
  });

  it('the Envoy bootstrap inside the ConfigMap validates against Envoy\'s protos', () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8s-envoy-'));
    try {
      const file = join(dir, 'envoy.yaml');
      writeFileSync(file, get('ConfigMap', 'llm-envoy-config').data['envoy.yaml']);
      const r = spawnSync('bash', [join(root, '../shared/tools/validate-envoy-yaml'), file], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
