/**
 * @module pii/termMatcher
 * Deny-list matching: thousands of exact terms (customer names, code names) found in one pass.
 *
 * Terms are compiled into one trie, case-folded. Because a term must match as a whole word, a
 * match can only begin where a word begins, so the matcher walks the trie from each word start
 * only — the whole-word restriction makes Aho–Corasick's failure links unnecessary, and the cost
 * is one pass over the text plus a short trie walk per word, whatever the number of terms.
 */

interface Node {
  next: Map<number, Node> | undefined;
  /** Set when a term ends here. */
  term: boolean;
}

const wordRe = /[\p{L}\p{N}\p{M}_]/u;

/** Letters, digits, marks and `_`, in any script. */
function isWordChar(c: number): boolean {
  if (c < 128) return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
  if (Number.isNaN(c)) return false;
  return wordRe.test(String.fromCharCode(c));
}

/** Per-UTF-16-unit case folding (keeps indices aligned with the text). */
function fold(c: number): number {
  if (c < 128) return c >= 65 && c <= 90 ? c + 32 : c;
  const lower = String.fromCharCode(c).toLowerCase();
  return lower.length === 1 ? lower.charCodeAt(0) : c;
}

/** Terms longer than this are refused by the options schema; also bounds each trie walk. */
export const maxTermLength = 200;

export class TermMatcher {
  private readonly root: Node = { next: undefined, term: false };
  /** Number of distinct terms compiled. */
  readonly size: number;

  constructor(terms: Iterable<string>) {
    let size = 0;
    for (const raw of terms) {
      const t = raw.trim().replace(/\s+/g, ' ');
      if (t.length === 0) continue;
      let node = this.root;
      for (let i = 0; i < t.length; i++) {
        const c = fold(t.charCodeAt(i));
        node.next ??= new Map();
        let child = node.next.get(c);
        if (child === undefined) {
          child = { next: undefined, term: false };
          node.next.set(c, child);
        }
        node = child;
      }
      if (!node.term) size++;
      node.term = true;
    }
    this.size = size;
  }

  /** Calls `hit(start, end)` for each longest whole-word match, left to right, non-overlapping. */
  scan(text: string, hit: (start: number, end: number) => void): void {
    const rootNext = this.root.next;
    if (rootNext === undefined) return;
    const n = text.length;
    let prevWord = false;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      const word = isWordChar(c);
      if (prevWord && word) continue;
      prevWord = word;
      let node = rootNext.get(fold(c));
      if (node === undefined) continue;
      let end = -1;
      let j = i + 1;
      for (;;) {
        if (node.term && !(isWordChar(text.charCodeAt(j - 1)) && isWordChar(text.charCodeAt(j)))) end = j;
        if (node.next === undefined || j >= n) break;
        const nx: Node | undefined = node.next.get(fold(text.charCodeAt(j)));
        if (nx === undefined) break;
        node = nx;
        j++;
      }
      if (end !== -1) {
        hit(i, end);
        i = end - 1;
        prevWord = isWordChar(text.charCodeAt(end - 1));
      }
    }
  }
}
