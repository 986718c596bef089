/**
 * @module pii/placeholders
 * The per-request mapping between placeholders and original values. Lives in the request's
 * memory only; nothing here is ever logged, cached or serialised.
 *
 * Placeholders look like `<EMAIL_1>`: upper-case type, `_`, a number from 1 without leading
 * zeros, in angle brackets — short, unusual in prose, and copied verbatim by models.
 *
 * Collisions: a prompt may already contain text shaped like a placeholder (`<EMAIL_1>` typed
 * by the user, or an answer from an earlier turn). Such literals are *reserved* before any
 * number is issued, and numbering skips them, so restoring never turns the user's own literal
 * into a value. If a literal equal to an already-issued placeholder shows up later (a caller
 * that reserved too late), that placeholder is withdrawn: neither it nor the literal is ever
 * restored, which is safe (no value goes where it was not) if less helpful.
 */

/** Any placeholder-shaped literal (what `reserve` looks for and `restore` considers). */
export const placeholderPattern = /<[A-Z][A-Z0-9_]{0,60}_[1-9][0-9]{0,8}>/g;

export type RestoreMode = 'text' | 'json';

/** One entity type's placeholders in a request. */
export interface TypeState {
  /** value → placeholder */
  readonly byValue: Map<string, string>;
  /** Last number issued. */
  n: number;
  /** `<TYPE_`: every placeholder of the type starts with it. */
  readonly head: string;
  /** Value behind placeholder number i + 1 (a hole where a number was skipped or withdrawn). */
  readonly values: (string | undefined)[];
}

/**
 * A request's placeholders. Most requests carry no entity: the maps are made on first write, so
 * such a request allocates none of them.
 */
export class PlaceholderTable {
  /** type → its placeholders and their values (nested: no key string built per entity). */
  private types: Map<string, TypeState> | undefined;
  /** Placeholders that can be restored. */
  private restorable = 0;
  private jsonValues: Map<string, string> | undefined;
  /** Placeholder-shaped literals of the request (numbering skips them). */
  private reserved: Set<string> | undefined;
  /** `<TYPE_` and its prefixes, for every type with an issued placeholder. */
  private typePrefixes: Set<string> | undefined;
  /** Length of the longest issued placeholder: the most a stream restorer ever holds back. */
  maxLength = 0;

  /** Number of placeholders that can be restored. */
  get size(): number {
    return this.restorable;
  }

  /** Marks every placeholder-shaped literal in `text` as taken. */
  reserve(text: string): void {
    if (text.indexOf('<') === -1) return;
    placeholderPattern.lastIndex = 0;
    for (let m = placeholderPattern.exec(text); m !== null; m = placeholderPattern.exec(text)) {
      const lit = m[0];
      (this.reserved ??= new Set()).add(lit);
      const slot = this.slotOf(lit);
      if (slot !== undefined && slot.t.values[slot.i] !== undefined) {
        // Issued before the literal was seen: withdraw it (see module doc).
        slot.t.byValue.delete(slot.t.values[slot.i]!);
        slot.t.values[slot.i] = undefined;
        this.restorable--;
        this.jsonValues?.delete(lit);
      }
    }
  }

  /** The placeholder for `value` of `type`: the same one every time within the request. */
  issue(type: string, value: string): string {
    return this.issueIn(this.typeState(type), value);
  }

  /** The placeholders of `type` (made on first use), for callers that issue many of one type. */
  typeState(type: string): TypeState {
    const types = (this.types ??= new Map());
    let t = types.get(type);
    if (t === undefined) {
      const head = `<${type}_`;
      types.set(type, (t = { byValue: new Map(), n: 0, head, values: [] }));
      const prefixes = (this.typePrefixes ??= new Set());
      for (let i = 1; i <= head.length; i++) prefixes.add(head.slice(0, i));
    }
    return t;
  }

  /** `issue` with the type's state already looked up (`typeState(type)`). */
  issueIn(t: TypeState, value: string): string {
    const known = t.byValue.get(value);
    if (known !== undefined) return known;
    // Numbers only grow, so an issued placeholder is never met again here; only the request's
    // own literals (reserved) are skipped.
    const reserved = this.reserved;
    let ph: string;
    do ph = t.head + ++t.n + '>';
    while (reserved !== undefined && reserved.has(ph));
    t.byValue.set(value, ph);
    t.values[t.n - 1] = value;
    this.restorable++;
    if (ph.length > this.maxLength) this.maxLength = ph.length;
    return ph;
  }

  /** The type's state and value index of a placeholder-shaped string, if its type has any. */
  private slotOf(placeholder: string): { t: TypeState; i: number } | undefined {
    const types = this.types;
    if (types === undefined) return undefined;
    const u = placeholder.lastIndexOf('_');
    const t = types.get(placeholder.slice(1, u));
    if (t === undefined) return undefined;
    return { t, i: Number(placeholder.slice(u + 1, -1)) - 1 };
  }

  /** The original value behind an issued placeholder, escaped for a JSON string in `json` mode. */
  lookup(placeholder: string, mode: RestoreMode = 'text'): string | undefined {
    const slot = this.slotOf(placeholder);
    const value = slot === undefined ? undefined : slot.t.values[slot.i];
    if (value === undefined || mode === 'text') return value;
    const json = (this.jsonValues ??= new Map());
    let escaped = json.get(placeholder);
    if (escaped === undefined) {
      escaped = JSON.stringify(value).slice(1, -1);
      json.set(placeholder, escaped);
    }
    return escaped;
  }

  /**
   * Whether `s` (starting with `<`) could still grow into an issued placeholder: a prefix of
   * `<TYPE_` for an issued type, or `<TYPE_` and digits, shorter than the longest placeholder.
   */
  isPrefix(s: string): boolean {
    const prefixes = this.typePrefixes;
    if (prefixes === undefined) return false;
    if (prefixes.has(s)) return true;
    if (s.length >= this.maxLength) return false;
    const u = s.lastIndexOf('_');
    if (u === -1 || u === s.length - 1 || !prefixes.has(s.slice(0, u + 1))) return false;
    for (let i = u + 1; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57 || (i === u + 1 && c === 48)) return false;
    }
    return true;
  }
}
