/**
 * The bootstrap root: static_resources (listeners and clusters) and the cross-references between
 * them (route clusters, ext_proc gRPC clusters).
 */
import fs from 'node:fs';
import YAML from 'yaml';
import { UnsupportedConfigError } from '../errors.js';
import { parseCluster } from './cluster.js';
import { parseListener } from './listener.js';
import type { BootstrapConfig, ClusterConfig, HttpFilterConfig } from './model.js';
import { Reader } from './reader.js';

export function loadBootstrapFile(file: string): unknown {
  return YAML.parse(fs.readFileSync(file, 'utf8'));
}

export function parseBootstrap(doc: unknown): BootstrapConfig {
  const root = Reader.of(doc, 'bootstrap');
  root.ignore('admin', 'the admin interface (stats, config dump) is not emulated; it serves no request traffic');
  const sr = root.child('static_resources');
  if (!sr) throw new UnsupportedConfigError('bootstrap.static_resources: required');
  const listeners = sr.children('listeners').map(parseListener);
  const clusters = new Map<string, ClusterConfig>();
  for (const c of sr.children('clusters')) {
    const cluster = parseCluster(c);
    if (clusters.has(cluster.name)) throw new UnsupportedConfigError(`${c.path}: duplicate cluster ${cluster.name}`);
    clusters.set(cluster.name, cluster);
  }
  sr.done();
  root.done();
  const cfg = { listeners, clusters };
  checkReferences(cfg);
  return cfg;
}

function checkReferences(cfg: BootstrapConfig): void {
  const checkGrpc = (f: HttpFilterConfig, where: string) => {
    if (f.type !== 'ext_proc') return;
    const c = cfg.clusters.get(f.config.grpcService.clusterName);
    if (!c) throw new UnsupportedConfigError(`${where}: grpc_service cluster ${f.config.grpcService.clusterName} is not defined`);
    // gRPC needs HTTP/2 to the processor (facts §2.12).
    if (c.protocol !== 'http2') {
      throw new UnsupportedConfigError(`cluster ${c.name} is used for gRPC but has no http2_protocol_options`);
    }
  };
  for (const l of cfg.listeners) {
    for (const f of l.hcm.httpFilters) checkGrpc(f, `listener ${l.name} filter ${f.name}`);
    for (const vh of l.hcm.virtualHosts) {
      for (const r of vh.routes) {
        if (r.cluster && !cfg.clusters.has(r.cluster)) {
          throw new UnsupportedConfigError(`route ${r.name}: cluster ${r.cluster} is not defined`);
        }
      }
    }
  }
  for (const c of cfg.clusters.values()) {
    for (const f of c.upstreamFilters) checkGrpc(f, `cluster ${c.name} filter ${f.name}`);
  }
}
