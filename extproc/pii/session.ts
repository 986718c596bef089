/**
 * @module pii/session
 * One request's PII state: the actions in force, the placeholder table, counts per entity type
 * and the types that require blocking. Created per request by `PiiEngine.session()`, dropped
 * with the request; its values never leave it.
 *
 * `rewriteAsync` scans large texts in windows (128 Ki characters with an 8 Ki overlap, so an
 * entity straddling a window edge is still seen whole) and yields to the event loop between
 * them: a multi-megabyte prompt never blocks other streams for long. `rewrite` (for texts the
 * caller may block on) scans in one pass: no overlap scanned twice, no window copies.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Detection, EntityType, PiiAction } from './entities.js';
import { PlaceholderTable, type RestoreMode, type TypeState } from './placeholders.js';
import { StreamRestorer, restoreText } from './restore.js';
import type { PiiScanner } from './scanner.js';

/** Text scanned per window (and between two yields of the async variants): ~3 ms of work. */
export const windowChars = 128 * 1024;
/** Extra text scanned past a window's end so entities crossing it are seen whole. */
const overlapChars = 8 * 1024;
/** Text before a window's start, for detectors that look behind (boundaries, URL schemes). */
const contextChars = 512;

export interface RewriteOptions {
  /**
   * Placeholders without angle brackets (`EMAIL_1`): for fields with a restricted alphabet,
   * such as OpenAI's message `name` (`^[a-zA-Z0-9_-]+$`). Not restored in answers.
   */
  readonly bare?: boolean;
}

/** One entity type's bookkeeping in a session: looked up once per entity, not once per map. */
interface TypeTally {
  readonly action: PiiAction;
  /** Entities of this type replaced so far. */
  n: number;
  /** The table's placeholders of this type (tokenize only). */
  readonly placeholders: TypeState | undefined;
}

export class PiiSession {
  /** Placeholders issued for this request (read by restorers). */
  readonly table = new PlaceholderTable();
  /** Types found whose action is `block`: the request must be refused (report these, never values). */
  readonly blocked = new Set<EntityType>();
  private readonly tallies = new Map<EntityType, TypeTally>();

  constructor(
    private readonly scanner: PiiScanner,
    private readonly actions: ReadonlyMap<EntityType, PiiAction>,
  ) {}

  /** Entities replaced so far, per type (tokenized, redacted or blocked). */
  get counts(): Map<EntityType, number> {
    const out = new Map<EntityType, number>();
    for (const [t, tally] of this.tallies) if (tally.n > 0) out.set(t, tally.n);
    return out;
  }

  /** Nothing to look for: every type is allowed for this request. */
  get idle(): boolean {
    return this.scanner.idle;
  }

  /**
   * Reserves placeholder-shaped literals in `text` (see `placeholders`). Call it for every text
   * of the request before rewriting any of them; `rewrite` also reserves its own text.
   */
  reserve(text: string): void {
    this.table.reserve(text);
  }

  /** `text` with every entity replaced according to its action. */
  rewrite(text: string, options: RewriteOptions = {}): string {
    if (this.idle || text.length === 0) return text;
    this.table.reserve(text);
    return this.apply(text, this.scanner.scan(text), options);
  }

  /** Like `rewrite`, yielding to the event loop after each window of a large text. */
  async rewriteAsync(text: string, options: RewriteOptions = {}): Promise<string> {
    if (text.length <= windowChars) return this.rewrite(text, options);
    if (this.idle) return text;
    this.table.reserve(text);
    const parts: string[] = [];
    let pos = 0;
    for (let a = 0; a < text.length; ) {
      await yieldToLoop();
      const found: Detection[] = [];
      a = this.scanWindow(text, a, found);
      pos = this.applyInto(text, found, options, parts, pos);
    }
    parts.push(text.slice(pos));
    return parts.join('');
  }

  /** Counts per type of what the scanner finds in `text` (e.g. a model's answer); changes nothing. */
  countEntities(text: string): Map<EntityType, number> {
    const counts = new Map<EntityType, number>();
    const found: Detection[] = [];
    if (text.length <= windowChars) found.push(...this.scanner.scan(text));
    else for (let a = 0; a < text.length; ) a = this.scanWindow(text, a, found);
    for (const d of found) counts.set(d.type, (counts.get(d.type) ?? 0) + 1);
    return counts;
  }

  /** `text` with every placeholder this request issued replaced by its value. */
  restore(text: string, mode: RestoreMode = 'text'): string {
    return restoreText(this.table, text, mode);
  }

  /** A restorer for one stream of deltas (one per content block / tool-call argument stream). */
  restorer(mode: RestoreMode = 'text'): StreamRestorer {
    return new StreamRestorer(this.table, mode);
  }

  /** Scans the window starting at `a`, appends detections starting in it, returns the next start. */
  private scanWindow(text: string, a: number, found: Detection[]): number {
    const b = Math.min(text.length, a + windowChars);
    const from = Math.max(0, a - contextChars);
    const to = Math.min(text.length, b + overlapChars);
    let next = b;
    for (const d of this.scanner.scan(text.slice(from, to))) {
      const start = d.start + from;
      if (start < a) continue;
      if (start >= b) break;
      const end = d.end + from;
      found.push({ start, end, type: d.type, priority: d.priority });
      if (end > next) next = end;
    }
    return next;
  }

  private apply(text: string, found: readonly Detection[], options: RewriteOptions): string {
    if (found.length === 0) return text;
    const parts: string[] = [];
    const pos = this.applyInto(text, found, options, parts, 0);
    parts.push(text.slice(pos));
    return parts.join('');
  }

  /** Appends `text` from `pos` with the detections replaced to `parts`; returns where it stopped. */
  private applyInto(text: string, found: readonly Detection[], options: RewriteOptions, parts: string[], pos: number): number {
    for (const d of found) {
      const tally = this.tallyOf(d.type);
      if (tally.action === 'allow') continue;
      parts.push(text.slice(pos, d.start));
      tally.n++;
      let ph: string;
      if (tally.placeholders !== undefined) {
        ph = this.table.issueIn(tally.placeholders, text.slice(d.start, d.end));
      } else {
        if (tally.action === 'block') this.blocked.add(d.type);
        ph = `<${d.type}>`;
      }
      parts.push(options.bare === true ? ph.slice(1, -1) : ph);
      pos = d.end;
    }
    return pos;
  }

  private tallyOf(type: EntityType): TypeTally {
    let t = this.tallies.get(type);
    if (t === undefined) {
      const action = this.actions.get(type) ?? 'tokenize';
      t = { action, n: 0, placeholders: action === 'tokenize' ? this.table.typeState(type) : undefined };
      this.tallies.set(type, t);
    }
    return t;
  }
}
