/**
 * Caller overrides of endpoint addresses (startStandin clusterEndpoints).
 */
import { UnsupportedConfigError } from '../errors.js';
import type { BootstrapConfig } from './model.js';

/** `http://127.0.0.1:1234` or `127.0.0.1:1234` → host/port. */
export function parseHostPort(s: string): { host: string; port: number } {
  const u = new URL(s.includes('://') ? s : `http://${s}`);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port };
}

/**
 * Replaces endpoint addresses. A string replaces every endpoint's address of a single-endpoint
 * cluster; `string[][]` gives one address per endpoint per priority and must have the YAML's shape
 * (endpoint metadata and hostnames are kept from the YAML).
 */
export function applyEndpointOverrides(cfg: BootstrapConfig, overrides: Record<string, string | string[][]>): void {
  for (const [name, ov] of Object.entries(overrides)) {
    const c = cfg.clusters.get(name);
    if (!c) throw new UnsupportedConfigError(`clusterEndpoints.${name}: no such cluster in the config`);
    const shape = c.priorities.map((p) => p.length);
    const grid = typeof ov === 'string' ? [[ov]] : ov;
    if (grid.length !== shape.length || grid.some((p, i) => p.length !== shape[i])) {
      throw new UnsupportedConfigError(`clusterEndpoints.${name}: expected ${JSON.stringify(shape)} endpoints per priority, got ${JSON.stringify(grid.map((p) => p.length))}`);
    }
    grid.forEach((p, i) =>
      p.forEach((addr, j) => {
        const ep = c.priorities[i]![j]!;
        Object.assign(ep, parseHostPort(addr), { overridden: true });
      }),
    );
  }
}
