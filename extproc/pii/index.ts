/**
 * @module pii
 * PII and secret detection, redaction and restore: the domain module behind the `pii` stage.
 * No Envoy or pipeline imports; the stage wires it to request and response bodies.
 *
 * ```ts
 * const engine = PiiEngine.fromOptions(stageOptions);          // once per config
 * const session = engine.session({ route, caller });            // once per request
 * const r = await rewriteRequestAsync(body, 'openai', session); // r.blocked → refuse
 * session.restore(answerText) / session.restorer('json').push(delta)
 * ```
 */
export { builtinEntityTypes, piiActions, type BuiltinEntityType, type Detection, type EntityType, type PiiAction } from './entities.js';
export { PiiEngine, type PiiContext } from './engine.js';
export { piiOptionsSchema, type PiiOptions, type PiiOptionsInput } from './options.js';
export { PlaceholderTable, placeholderPattern, type RestoreMode } from './placeholders.js';
export { StreamRestorer, restoreText } from './restore.js';
export { PiiScanner, resolveOverlaps, type ScannerSpec } from './scanner.js';
export { PiiSession, windowChars, type RewriteOptions } from './session.js';
export { TermMatcher } from './termMatcher.js';
export { rewriteRequest, rewriteRequestAsync, type Dialect, type WalkResult } from './walker.js';
