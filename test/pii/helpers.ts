// Shared helpers for the PII tests: a scanner with every built-in type, and detection lists.
import { builtinEntityTypes } from '../../extproc/pii/entities.js';
import { PiiScanner } from '../../extproc/pii/scanner.js';

export const allBuiltins = new PiiScanner({
  builtins: new Set(builtinEntityTypes),
  custom: [],
  deny: [],
  allow: new Set(),
});

/** `type:value` for each entity found in `text`. */
export function found(text: string, scanner: PiiScanner = allBuiltins): string[] {
  return scanner.scan(text).map((d) => `${d.type}:${text.slice(d.start, d.end)}`);
}
