/**
 * @module store/vector
 * pgvector's text form, `[x,y,z]`: what `pg` sends for a `$n::vector` parameter.
 */

export function toVectorSql(v: Float32Array | readonly number[]): string {
  let s = '[';
  for (let i = 0; i < v.length; i++) {
    if (i > 0) s += ',';
    s += String(v[i]);
  }
  return s + ']';
}

export function fromVectorSql(text: string): Float32Array {
  const inner = text.trim().replace(/^\[|\]$/g, '');
  if (inner === '') return new Float32Array(0);
  return Float32Array.from(inner.split(',').map(Number));
}
