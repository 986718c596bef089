/** @module config/path — how a config key is named in error messages. */

/** `['routes', 2, 'fallback', 1]` → `routes[2].fallback[1]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}
