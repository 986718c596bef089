/**
 * @module pii/restore
 * Puts original values back into the model's answer: whole texts (`restoreText`) and streams
 * (`StreamRestorer`), in plain-text or JSON-string context.
 *
 * How the stage uses it: one `StreamRestorer` per independent text stream — per content block
 * (Anthropic `content_block_delta` index), per choice's `delta.content`, per tool call's
 * `function.arguments` / `input_json_delta.partial_json` — fed the *decoded* delta strings in
 * order, and `flush()`ed when that stream ends (block stop, finish_reason, `[DONE]`). The
 * returned text replaces the delta (an empty string means "nothing yet"). Tool-call arguments
 * are JSON text, so their restorer uses mode `json`: a restored value is escaped as inside a
 * JSON string (a `"` in the original becomes `\"`), keeping the arguments valid JSON.
 *
 * Only placeholders this request issued are replaced; invented or mangled ones (`<EMAIL_9>`
 * never issued, `<EMAIL 1>`) pass through untouched.
 */
import { placeholderPattern, type PlaceholderTable, type RestoreMode } from './placeholders.js';

/** Replaces every issued placeholder in `text`. */
export function restoreText(table: PlaceholderTable, text: string, mode: RestoreMode = 'text'): string {
  if (table.size === 0 || text.indexOf('<') === -1) return text;
  return text.replace(placeholderPattern, (m) => table.lookup(m, mode) ?? m);
}

/**
 * Incremental restore for one stream of text pieces. Holds back only a trailing fragment that
 * is a strict prefix of an issued placeholder (so at most `maxLength - 1` characters), and
 * nothing at all while no placeholder was issued.
 */
export class StreamRestorer {
  private pending = '';

  constructor(
    private readonly table: PlaceholderTable,
    private readonly mode: RestoreMode = 'text',
  ) {}

  /** Characters currently held back. */
  get held(): number {
    return this.pending.length;
  }

  /** Feeds one piece; returns what can be emitted now. */
  push(piece: string): string {
    let s = this.pending.length === 0 ? piece : this.pending + piece;
    this.pending = '';
    const table = this.table;
    if (table.size === 0) return s;
    const lt = s.lastIndexOf('<');
    if (lt === -1) return s;
    if (s.length - lt < table.maxLength && s.indexOf('>', lt) === -1 && table.isPrefix(s.slice(lt))) {
      this.pending = s.slice(lt);
      s = s.slice(0, lt);
      if (s.indexOf('<') === -1) return s;
    }
    return s.replace(placeholderPattern, (m) => table.lookup(m, this.mode) ?? m);
  }

  /** End of the stream: whatever was held back, as is (it never became a placeholder). */
  flush(): string {
    const s = this.pending;
    this.pending = '';
    return s;
  }
}
