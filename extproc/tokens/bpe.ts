/**
 * @module tokens/bpe
 * Exact BPE counts, synchronously, with `gpt-tokenizer` (chosen over `js-tiktoken` by
 * bench/tokens.ts: identical counts, several times faster; see tokens/README.md).
 *
 * Synchronous means it blocks the thread it runs on: the event loop only for small texts
 * (`TokenCounter` sends large ones to a worker). Encoders load once, on first use per encoding,
 * and stay for the life of the process.
 */
import { createRequire } from 'node:module';
import type { EncodingName } from './encodings.js';

type CountFn = (text: string, options?: { disallowedSpecial?: Set<string> }) => number;

const require = createRequire(import.meta.url);
const loaded = new Map<EncodingName, CountFn>();

// Text from clients may contain "<|endoftext|>" and friends: it is counted as ordinary text
// (what the provider does with user content), never rejected.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

function encoder(encoding: EncodingName): CountFn {
  let fn = loaded.get(encoding);
  if (!fn) {
    // The CommonJS build loads synchronously (the rank tables are a few MB of JS).
    const mod = require(`gpt-tokenizer/cjs/encoding/${encoding}`) as { countTokens: CountFn };
    fn = mod.countTokens;
    loaded.set(encoding, fn);
  }
  return fn;
}

/** Exact token count of `text` in `encoding` (special-token strings counted as plain text). */
export function countBpe(text: string, encoding: EncodingName): number {
  if (text.length === 0) return 0;
  return encoder(encoding)(text, PLAIN_TEXT);
}
