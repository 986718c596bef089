/**
 * The strict YAML reader: every key of a mapping must be read (or explicitly `ignore`d) before
 * `done()`, which refuses the rest with an UnsupportedConfigError naming the field's path.
 */
import { UnsupportedConfigError } from '../errors.js';

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads one YAML mapping; `done()` refuses every key that was not read. */
export class Reader {
  private readonly seen = new Set<string>();
  constructor(
    readonly obj: Obj,
    readonly path: string,
  ) {}

  static of(v: unknown, path: string): Reader {
    if (!isObj(v)) throw new UnsupportedConfigError(`${path}: expected a mapping`);
    return new Reader(v, path);
  }

  at(k: string): string {
    return `${this.path}.${k}`;
  }
  has(k: string): boolean {
    return this.obj[k] !== undefined;
  }
  raw(k: string): unknown {
    this.seen.add(k);
    return this.obj[k];
  }
  /** Accepted and deliberately without effect in the stand-in; `why` documents it at the call site. */
  ignore(k: string, why: string): void {
    void why;
    this.seen.add(k);
  }
  str(k: string): string | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new UnsupportedConfigError(`${this.at(k)}: expected a string`);
    return v;
  }
  reqStr(k: string): string {
    const v = this.str(k);
    if (v === undefined || v === '') throw new UnsupportedConfigError(`${this.at(k)}: required`);
    return v;
  }
  bool(k: string, def = false): boolean {
    const v = this.raw(k);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') throw new UnsupportedConfigError(`${this.at(k)}: expected a bool`);
    return v;
  }
  num(k: string): number | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new UnsupportedConfigError(`${this.at(k)}: expected a number`);
    return n;
  }
  /** google.protobuf.Duration in proto-JSON form ("5s", "0.25s") → milliseconds. */
  durationMs(k: string): number | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^\d+(\.\d+)?s$/.test(v)) {
      throw new UnsupportedConfigError(`${this.at(k)}: expected a duration like "5s"`);
    }
    return Math.round(parseFloat(v) * 1000);
  }
  enumOf<T extends string>(k: string, allowed: readonly T[], def: T): T {
    const v = this.raw(k);
    if (v === undefined) return def;
    const s = String(v).toUpperCase() as T;
    if (!allowed.includes(s)) throw new UnsupportedConfigError(`${this.at(k)}: unsupported value ${String(v)}`);
    return s;
  }
  child(k: string): Reader | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    return Reader.of(v, this.at(k));
  }
  list(k: string): unknown[] {
    const v = this.raw(k);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new UnsupportedConfigError(`${this.at(k)}: expected a list`);
    return v;
  }
  children(k: string): Reader[] {
    return this.list(k).map((v, i) => Reader.of(v, `${this.at(k)}[${i}]`));
  }
  strings(k: string): string[] {
    return this.list(k).map((v, i) => {
      if (typeof v !== 'string') throw new UnsupportedConfigError(`${this.at(k)}[${i}]: expected a string`);
      return v;
    });
  }
  /** typed_config: checks "@type" and returns a reader over the rest. */
  typed(k: string, expectedType: string): Reader {
    const r = this.child(k);
    if (!r) throw new UnsupportedConfigError(`${this.at(k)}: required`);
    const t = r.str('@type');
    if (t !== `type.googleapis.com/${expectedType}`) {
      throw new UnsupportedConfigError(`${r.at('@type')}: expected type.googleapis.com/${expectedType}, got ${String(t)}`);
    }
    return r;
  }
  done(): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.seen.has(k)) {
        throw new UnsupportedConfigError(`unsupported field ${this.at(k)} (not implemented by the stand-in)`);
      }
    }
  }
}

// ---- shared by listener and cluster parsing ------------------------------------------------------

export const DEFAULT_BUFFER_LIMIT = 1024 * 1024; // listener.proto per_connection_buffer_limit_bytes: 1 MiB

export function parseSocketAddress(r: Reader): { host: string; port: number } {
  const sa = r.child('socket_address');
  if (!sa) throw new UnsupportedConfigError(`${r.at('socket_address')}: required`);
  const host = sa.reqStr('address');
  const port = sa.num('port_value');
  if (port === undefined) throw new UnsupportedConfigError(`${sa.at('port_value')}: required`);
  sa.done();
  r.done();
  return { host, port };
}
