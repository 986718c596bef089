/**
 * @module digest
 * SHA-256 as hex of a string, the way the hot path needs it (cache keys, API-key identities:
 * two or three per request). `crypto.hash` (Node ≥ 20.12) digests in one call without a Hash
 * object: 0.2 µs instead of 0.6 for a key, 2.3 instead of 2.9 for a 2 KB conversation.
 */
import { hash } from 'node:crypto';

export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}
