/**
 * An ordered multimap of lower-case header names to values, like Envoy's HeaderMapImpl.
 * Values are kept as latin1 strings, i.e. one char per byte, so they round-trip the raw bytes a
 * node:http parser produced and the `raw_value` bytes an ext_proc server sends.
 * Pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`, `:status`) live in the same map,
 * first, as in Envoy.
 */
import type { PbHeaderValue } from './proto.js';

export class HeaderMap {
  private entries: [string, string][] = [];

  static fromPairs(pairs: Iterable<readonly [string, string]>): HeaderMap {
    const m = new HeaderMap();
    for (const [k, v] of pairs) m.add(k, v);
    return m;
  }

  /** node's `rawHeaders` layout: [name, value, name, value, ...]. */
  static fromRaw(raw: readonly string[]): HeaderMap {
    const m = new HeaderMap();
    for (let i = 0; i + 1 < raw.length; i += 2) m.add(raw[i]!, raw[i + 1]!);
    return m;
  }

  get(name: string): string | undefined {
    const n = name.toLowerCase();
    return this.entries.find(([k]) => k === n)?.[1];
  }

  getAll(name: string): string[] {
    const n = name.toLowerCase();
    return this.entries.filter(([k]) => k === n).map(([, v]) => v);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** addCopy: appends another entry. */
  add(name: string, value: string): void {
    this.entries.push([name.toLowerCase(), value]);
  }

  /**
   * setCopy: the first entry of that name gets the value, later duplicates go; a new name is
   * appended (pseudo-headers are kept in front, as Envoy's map orders them).
   */
  set(name: string, value: string): void {
    const n = name.toLowerCase();
    const i = this.entries.findIndex(([k]) => k === n);
    if (i >= 0) {
      this.entries[i] = [n, value];
      this.entries = this.entries.filter(([k], j) => k !== n || j === i);
      return;
    }
    if (n.startsWith(':')) {
      const firstRegular = this.entries.findIndex(([k]) => !k.startsWith(':'));
      if (firstRegular >= 0) {
        this.entries.splice(firstRegular, 0, [n, value]);
        return;
      }
    }
    this.entries.push([n, value]);
  }

  remove(name: string): void {
    const n = name.toLowerCase();
    this.entries = this.entries.filter(([k]) => k !== n);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Sum of name and value lengths, as HeaderMapImpl::byteSize counts. */
  byteSize(): number {
    return this.entries.reduce((n, [k, v]) => n + k.length + v.length, 0);
  }

  pairs(): [string, string][] {
    return this.entries.map(([k, v]) => [k, v]);
  }

  clone(): HeaderMap {
    return HeaderMap.fromPairs(this.entries);
  }

  /**
   * mutation_utils.cc headersToProto: every entry (pseudo-headers included) with its value in
   * `raw_value` — the runtime guard envoy.reloadable_features.send_header_raw_value is default-true
   * (facts §1.3).
   */
  toProto(): PbHeaderValue[] {
    return this.entries.map(([k, v]) => ({ key: k, raw_value: Buffer.from(v, 'latin1') }));
  }

  /** The headers without pseudo-headers, as [name, value] pairs for node:http. */
  regularPairs(): [string, string][] {
    return this.entries.filter(([k]) => !k.startsWith(':'));
  }
}

/** Envoy HeaderUtility::headerNameIsValid: RFC 7230 token chars (pseudo-header colon allowed first). */
export function headerNameIsValid(name: string): boolean {
  if (name.length === 0) return false;
  const body = name.startsWith(':') ? name.slice(1) : name;
  return body.length > 0 && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(body);
}

/**
 * Envoy HeaderUtility::headerValueIsValid: `http2::adapter::HeaderValidator::IsValidHeaderValue(
 * value, ObsTextOption::kAllow)` (older: nghttp2_check_header_value) — HTAB, visible ASCII
 * 0x20–0x7E and obs-text 0x80–0xFF; every other control character (NUL, CR, LF, 0x01–0x1F, DEL)
 * makes an ext_proc set_headers mutation fail ("Invalid character in set_headers mutation.").
 * Values are latin1 strings, one char per byte.
 */
export function headerValueIsValid(value: string): boolean {
  return /^[\t\x20-\x7e\x80-\xff]*$/.test(value);
}
