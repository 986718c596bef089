/**
 * @module config/env
 * `${NAME}` and `${NAME:-default}` references in config string values, so secrets (API keys,
 * database URLs) live in the environment, not in the file. Substitution runs on parsed values,
 * never on the YAML text, so a secret containing YAML syntax cannot change the document.
 */
import { formatPath } from './path.js';

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces env references in every string of `value`; missing variables without a default are problems. */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv): { value: unknown; problems: string[] } {
  const problems: string[] = [];
  const walk = (v: unknown, path: (string | number)[]): unknown => {
    if (typeof v === 'string') {
      if (!v.includes('${')) return v;
      return v.replace(REFERENCE, (_whole, name: string, fallback: string | undefined) => {
        const found = env[name];
        if (found !== undefined && found !== '') return found;
        if (fallback !== undefined) return fallback;
        problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
        return '';
      });
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, [...path, k])]));
    }
    return v;
  };
  return { value: walk(value, []), problems };
}
