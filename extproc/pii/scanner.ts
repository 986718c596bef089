/**
 * @module pii/scanner
 * Finds every entity in a text: the built-in detectors, the operator's regexes and deny lists,
 * then one deterministic overlap resolution, with allow-listed values shielding whatever they
 * cover. Immutable once built, shared by every request that uses the same set of types.
 */
import { detectBuiltins } from './detectors.js';
import { allowPriority, customPriority, denyListPriority, type Detection, type EntityType } from './entities.js';
import { TermMatcher } from './termMatcher.js';

/** Type name used internally for allow-listed spans (never reported, never replaced). */
export const ALLOWED = '\u0000allowed';

export interface CustomDetector {
  readonly type: EntityType;
  /** Compiled with the `g` flag. */
  readonly regex: RegExp;
}

export interface DenyDetector {
  readonly type: EntityType;
  readonly matcher: TermMatcher;
}

export interface ScannerSpec {
  /** Built-in types to look for. */
  readonly builtins: ReadonlySet<string>;
  readonly custom: readonly CustomDetector[];
  readonly deny: readonly DenyDetector[];
  /** Values never touched, compared case-insensitively. */
  readonly allow: ReadonlySet<string>;
}

export class PiiScanner {
  constructor(private readonly spec: ScannerSpec) {}

  /** True when there is nothing to look for (every type allowed). */
  get idle(): boolean {
    return this.spec.builtins.size === 0 && this.spec.custom.length === 0 && this.spec.deny.length === 0;
  }

  /**
   * Entities in `text`, sorted by start, never overlapping. Allow-listed values are left out
   * (and so is anything they overlap).
   */
  scan(text: string): Detection[] {
    if (this.idle || text.length === 0) return [];
    const raw: Detection[] = [];
    detectBuiltins(text, this.spec.builtins, raw);
    for (const c of this.spec.custom) {
      const re = c.regex;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        raw.push({ start: m.index, end: m.index + m[0].length, type: c.type, priority: customPriority });
      }
    }
    for (const d of this.spec.deny) {
      d.matcher.scan(text, (start, end) => raw.push({ start, end, type: d.type, priority: denyListPriority }));
    }
    if (raw.length === 0) return raw;
    const allow = this.spec.allow;
    if (allow.size > 0) {
      for (let i = 0; i < raw.length; i++) {
        const d = raw[i] as Detection;
        if (allow.has(text.slice(d.start, d.end).toLowerCase())) {
          raw[i] = { start: d.start, end: d.end, type: ALLOWED, priority: allowPriority };
        }
      }
    }
    return resolveOverlaps(raw).filter((d) => d.type !== ALLOWED);
  }
}

/** Higher priority, then longer, then earlier. */
function better(a: Detection, b: Detection): number {
  return b.priority - a.priority || b.end - b.start - (a.end - a.start) || a.start - b.start;
}

/**
 * Keeps a non-overlapping subset: within each cluster of mutually overlapping detections, the
 * best ones greedily (see `better`). Deterministic whatever order detectors ran in.
 */
export function resolveOverlaps(raw: Detection[]): Detection[] {
  raw.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Detection[] = [];
  let i = 0;
  while (i < raw.length) {
    const first = raw[i] as Detection;
    let clusterEnd = first.end;
    let j = i + 1;
    while (j < raw.length && (raw[j] as Detection).start < clusterEnd) {
      clusterEnd = Math.max(clusterEnd, (raw[j] as Detection).end);
      j++;
    }
    if (j === i + 1) {
      out.push(first);
    } else {
      const cluster = raw.slice(i, j).sort(better);
      const kept: Detection[] = [];
      for (const d of cluster) {
        if (kept.every((k) => k.end <= d.start || d.end <= k.start)) kept.push(d);
      }
      kept.sort((a, b) => a.start - b.start);
      out.push(...kept);
    }
    i = j;
  }
  return out;
}
