/**
 * @module pipeline/headers
 * Read-only view of an HTTP header block as Envoy sent it: lower-case names (pseudo-headers
 * such as `:path` included), values decoded from `raw_value` bytes as UTF-8. The map is built
 * on first lookup, so a phase that never reads headers pays nothing for them.
 */

/** A header as it comes off the wire. */
export interface RawHeader {
  readonly key: string;
  readonly value: string;
}

/** Lower-case header name → values in arrival order. */
export class HeaderView {
  private map: Map<string, string[]> | undefined;

  constructor(private readonly raw: readonly RawHeader[]) {}

  private index(): Map<string, string[]> {
    if (this.map) return this.map;
    const map = new Map<string, string[]>();
    for (const { key, value } of this.raw) {
      const list = map.get(key);
      if (list) list.push(value);
      else map.set(key, [value]);
    }
    this.map = map;
    return map;
  }

  /** First value of `name` (lower-case), or undefined. */
  get(name: string): string | undefined {
    return this.index().get(name)?.[0];
  }

  /** Every value of `name`. */
  getAll(name: string): readonly string[] {
    return this.index().get(name) ?? [];
  }

  has(name: string): boolean {
    return this.index().has(name);
  }

  /** Number of header entries (repeated names counted each time). */
  get size(): number {
    return this.raw.length;
  }

  /** Header names (for diagnostics; values never leave this object unless a stage asks). */
  names(): IterableIterator<string> {
    return this.index().keys();
  }
}
