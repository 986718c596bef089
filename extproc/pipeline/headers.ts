/**
 * @module pipeline/headers
 * Read-only view of an HTTP header block as Envoy sent it: lower-case names (pseudo-headers
 * such as `:path` included) and values as bytes (`raw_value`, Envoy's default) or text. Values
 * are decoded (UTF-8) only when asked for, and a lookup scans the small list instead of
 * building a map: most exchanges read two or three headers, many read none.
 */

/** One header entry in Envoy's shape (config.core.v3.HeaderValue). */
export interface HeaderEntry {
  readonly key?: string;
  readonly value?: string;
  readonly raw_value?: Uint8Array;
}

const decoder = new TextDecoder();

function valueOf(entry: HeaderEntry): string {
  const raw = entry.raw_value;
  if (raw && raw.length > 0) return decoder.decode(raw);
  return entry.value ?? '';
}

/** Lower-case header name → values in arrival order. */
export class HeaderView {
  /** Values decoded so far, by entry index: several stages ask for `:path` on every message. */
  private decoded: (string | undefined)[] | undefined;

  constructor(private readonly entries: readonly HeaderEntry[]) {}

  /** First value of `name` (lower-case), or undefined. */
  get(name: string): string | undefined {
    const entries = this.entries;
    for (let i = 0; i < entries.length; i++) {
      if (entries[i]!.key !== name) continue;
      const decoded = (this.decoded ??= new Array<string | undefined>(entries.length));
      return (decoded[i] ??= valueOf(entries[i]!));
    }
    return undefined;
  }

  /** Every value of `name`. */
  getAll(name: string): string[] {
    const out: string[] = [];
    for (const e of this.entries) if (e.key === name) out.push(valueOf(e));
    return out;
  }

  has(name: string): boolean {
    for (const e of this.entries) if (e.key === name) return true;
    return false;
  }

  /** Number of header entries (repeated names counted each time). */
  get size(): number {
    return this.entries.length;
  }

  /** Header names in arrival order (for diagnostics; values stay here unless a stage asks). */
  names(): string[] {
    return this.entries.map((e) => e.key ?? '');
  }
}
