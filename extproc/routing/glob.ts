/**
 * @module routing/glob
 * Caller patterns: exact ids, or globs where `*` matches any run of characters (including `/`,
 * so `spiffe://cluster.local/ns/shop/*` takes every service account of a namespace).
 */

/** Compiles patterns into one predicate (exact ids in a set, globs in one regular expression). */
export function compileCallerPatterns(patterns: readonly string[]): (caller: string) => boolean {
  const exact = new Set<string>();
  const globs: string[] = [];
  for (const p of patterns) {
    if (p.includes('*')) globs.push(p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*'));
    else exact.add(p);
  }
  const re = globs.length > 0 ? new RegExp(`^(?:${globs.join('|')})$`) : undefined;
  return (caller) => exact.has(caller) || (re !== undefined && re.test(caller));
}
