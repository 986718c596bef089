/**
 * Every Kubernetes and Istio object under deploy/ is validated against the schema of the API
 * version it targets (kubernetes-models and @kubernetes-models/istio), as `kubectl apply` would
 * before admission: wrong types, missing required fields, bad enum values. A kind the models do
 * not know fails the test, so a new manifest cannot slip through unchecked. YAML files without
 * apiVersion/kind (Grafana provisioning, Prometheus, the OpenTelemetry collector) are other
 * tools' formats and must live in the folders those tools read.
 */
import { describe, expect, it } from 'vitest';
import { type Any, k8sObjects, yamlDocs } from './manifests.js';

/** Module holding the models of an apiVersion; undefined when no package models it. */
function modelModule(apiVersion: string): string | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === '') return `kubernetes-models/${version}`;
  if (group!.endsWith('.istio.io')) return `@kubernetes-models/istio/${group}/${version}`;
  if (/^(apps|autoscaling|policy|batch)$/.test(group!) || group!.endsWith('.k8s.io')) return `kubernetes-models/${group}/${version}`;
  return undefined;
}

type Model = new (data: Any) => { validate(): void };

async function modelFor(apiVersion: string, kind: string): Promise<Model | undefined> {
  const mod = modelModule(apiVersion);
  if (!mod) return undefined;
  try {
    const m = (await import(mod)) as Record<string, unknown>;
    return typeof m[kind] === 'function' ? (m[kind] as Model) : undefined;
  } catch {
    return undefined;
  }
}

const objects = k8sObjects('deploy');

describe('manifests under deploy/ validate against their API schemas', () => {
  it('finds the Kubernetes and Istio manifests', () => {
    const kinds = new Set(objects.map((o) => `${o.value.apiVersion}/${o.value.kind}`));
    for (const k of [
      'apps/v1/Deployment',
      'v1/Service',
      'v1/ConfigMap',
      'policy/v1/PodDisruptionBudget',
      'autoscaling/v2/HorizontalPodAutoscaler',
      'networking.k8s.io/v1/NetworkPolicy',
      'networking.istio.io/v1beta1/ServiceEntry',
      'networking.istio.io/v1beta1/DestinationRule',
      'networking.istio.io/v1beta1/VirtualService',
      'networking.istio.io/v1beta1/Gateway',
      'networking.istio.io/v1alpha3/EnvoyFilter',
    ]) expect(kinds, k).toContain(k);
  });

  for (const o of objects) {
    const { apiVersion, kind, metadata } = o.value;
    it(`${o.file}#${o.index} ${apiVersion} ${kind} ${metadata?.name}`, async () => {
      const M = await modelFor(apiVersion, kind);
      expect(M, `no schema for ${apiVersion} ${kind}: add its model or do not ship it`).toBeDefined();
      expect(() => new M!(o.value).validate()).not.toThrow();
      expect(metadata?.name, 'metadata.name').toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      if (kind !== 'Namespace') expect(metadata?.namespace, 'every namespaced object says where it goes').toBeTruthy();
    });
  }

  it('the validation fails on a broken object (the check is not vacuous)', async () => {
    const M = (await modelFor('apps/v1', 'Deployment'))!;
    const bad = structuredClone(objects.find((o) => o.value.kind === 'Deployment' && o.value.metadata.name === 'llm-extproc')!.value);
    bad.spec.template.spec.containers[0].readinessProbe.grpc.port = 'grpc';
    expect(() => new M(bad).validate()).toThrow(/port/);
    const EF = (await modelFor('networking.istio.io/v1alpha3', 'EnvoyFilter'))!;
    const badEf = structuredClone(objects.find((o) => o.value.kind === 'EnvoyFilter')!.value);
    badEf.spec.configPatches[0].applyTo = 'HTTP_FILTERS';
    expect(() => new EF(badEf).validate()).toThrow(/applyTo/);
    expect(await modelFor('example.com/v1', 'Widget')).toBeUndefined();
  });

  it('YAML without apiVersion/kind is another tool\'s config, in that tool\'s folder', () => {
    for (const d of yamlDocs('deploy').filter((d) => !(d.value.apiVersion && d.value.kind)))
      expect(d.file, `${d.file} is neither a manifest nor a known tool config`).toMatch(/^deploy\/(grafana|otel-collector)\//);
  });

  it('no Secret with values is shipped (provider keys and backend URLs are created by the operator)', () => {
    for (const o of objects.filter((o) => o.value.kind === 'Secret'))
      expect(o.value.data ?? o.value.stringData, `${o.file}: Secret with values`).toBeUndefined();
  });
});
