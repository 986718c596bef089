/**
 * @module pipeline/headers
 * Read-only view of an HTTP header block as Envoy sent it: lower-case names (pseudo-headers
 * such as `:path` included) and values as bytes (`raw_value`, Envoy's default) or text, given as
 * entries or packed by the server's wire decoder. Values
 * are decoded (UTF-8) only when asked for, and a lookup scans the small list instead of
 * building a map: most exchanges read two or three headers, many read none.
 */

/** One header entry in Envoy's shape (config.core.v3.HeaderValue). */
export interface HeaderEntry {
  readonly key?: string;
  readonly value?: string;
  readonly raw_value?: Uint8Array;
}

/**
 * A header block as the server's wire decoder gives it (server/wireDecode): names, and the bytes
 * of every value in one buffer, value i at `values[bounds[2i], bounds[2i+1])`. Far less to keep
 * alive for a stream's lifetime than an object and a Buffer per header.
 */
export interface PackedHeaders {
  readonly names: readonly string[];
  readonly values: Buffer;
  readonly bounds: Uint32Array;
}

const decoder = new TextDecoder();

function valueOf(entry: HeaderEntry): string {
  const raw = entry.raw_value;
  if (raw && raw.length > 0) return decoder.decode(raw);
  return entry.value ?? '';
}

function isPacked(source: readonly HeaderEntry[] | PackedHeaders): source is PackedHeaders {
  return !Array.isArray(source);
}

/** Lower-case header name → values in arrival order. */
export class HeaderView {
  private readonly keys: readonly string[];
  private readonly entries: readonly HeaderEntry[] | undefined;
  private readonly packed: PackedHeaders | undefined;
  /** Values decoded so far, by entry index: several stages ask for `:path` on every message. */
  private decoded: (string | undefined)[] | undefined;

  constructor(source: readonly HeaderEntry[] | PackedHeaders) {
    if (isPacked(source)) {
      this.keys = source.names;
      this.packed = source;
    } else {
      this.keys = source.map((e) => e.key ?? '');
      this.entries = source;
    }
  }

  private valueAt(i: number): string {
    const p = this.packed;
    if (p === undefined) return valueOf(this.entries![i]!);
    const start = p.bounds[2 * i]!;
    const end = p.bounds[2 * i + 1]!;
    return end > start ? p.values.toString('utf8', start, end) : '';
  }

  /** First value of `name` (lower-case), or undefined. */
  get(name: string): string | undefined {
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== name) continue;
      const decoded = (this.decoded ??= new Array<string | undefined>(keys.length));
      return (decoded[i] ??= this.valueAt(i));
    }
    return undefined;
  }

  /** Every value of `name`. */
  getAll(name: string): string[] {
    const out: string[] = [];
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] === name) out.push(this.valueAt(i));
    return out;
  }

  /** Every value of `name` joined by commas (how HTTP folds repeated headers), or undefined. */
  joined(name: string): string | undefined {
    const values = this.getAll(name);
    return values.length > 0 ? values.join(',') : undefined;
  }

  has(name: string): boolean {
    return this.keys.includes(name);
  }

  /** Number of header entries (repeated names counted each time). */
  get size(): number {
    return this.keys.length;
  }

  /** Header names in arrival order (for diagnostics; values stay here unless a stage asks). */
  names(): string[] {
    return [...this.keys];
  }
}
