/**
 * Writes deploy/kubernetes/envoy-configmap.yaml from the gateway ConfigMap's config (see
 * manifests.ts k8sEnvoyConfigMapText). Run after changing the gateway ConfigMap or the Envoy
 * template: npx tsx test/deploy/render-k8s-envoy.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { k8sEnvoyConfigMapText, root } from './manifests.js';

const out = join(root, 'deploy/kubernetes/envoy-configmap.yaml');
writeFileSync(out, k8sEnvoyConfigMapText());
console.log(`wrote ${out}`);
