/**
 * Header mutation rules and application, after
 * - `source/extensions/filters/common/mutation_rules/mutation_rules.cc` (Checker::isAllowed), and
 * - `source/extensions/filters/http/ext_proc/mutation_utils.cc` (applyHeaderMutations,
 *   applyBodyMutations), see facts §1.3, §2.6, §2.11.
 */
import type { MutationRulesConfig } from './config/index.js';
import { HeaderMap, headerNameIsValid, headerValueIsValid } from './headers.js';
import { toBuffer, type PbBodyMutation, type PbHeaderMutation } from './proto.js';

export type CheckOperation = 'SET' | 'APPEND' | 'REMOVE';
export type CheckResult = 'OK' | 'IGNORE' | 'FAIL';

/** Http::Headers prefix (default "x-envoy"). */
const ENVOY_PREFIX = 'x-envoy';
/** HCM defaults: max_request_headers_kb 60, headers_with_underscores… max headers count 100. */
export const MAX_HEADERS_COUNT = 100;
export const MAX_HEADERS_KB = 60;

function isValidValue(name: string, value: string): boolean {
  // mutation_rules.cc isValidValue: host/:authority must be a valid authority, :scheme valid,
  // :status an integer ≥ 200; everything else a valid header value.
  if (name === 'host' || name === ':authority') return /^[^\s/?#@]+$/.test(value) && headerValueIsValid(value);
  if (name === ':scheme') return value === 'http' || value === 'https';
  if (name === ':status') return /^\d+$/.test(value) && Number(value) >= 200;
  return headerValueIsValid(value);
}

export class MutationChecker {
  constructor(private readonly rules: MutationRulesConfig) {}

  /** Checker::check: a denied mutation is IGNOREd, or FAILs with disallow_is_error. */
  check(op: CheckOperation, name: string, value: string): CheckResult {
    if (this.isAllowed(op, name, value)) return 'OK';
    return this.rules.disallow_is_error ? 'FAIL' : 'IGNORE';
  }

  /** Checker::isAllowed, in the order of facts §2.6. */
  private isAllowed(op: CheckOperation, name: string, value: string): boolean {
    const r = this.rules;
    // 1. Removing host or any pseudo-header is never allowed (isModifiableHeader).
    if (op === 'REMOVE' && (name.startsWith(':') || name === 'host')) return false;
    // 2./3. Regex rules first.
    if (r.disallow_expression?.test(name)) return false;
    if (r.allow_expression?.test(name)) return isValidValue(name, value) || op === 'REMOVE';
    // 4. disallow_all.
    if (r.disallow_all) return false;
    // 5. Routing headers unless allow_all_routing.
    if (!r.allow_all_routing && (name === 'host' || name === ':authority' || name === ':method' || name === ':scheme')) return false;
    if (name.startsWith(':')) {
      // 6. Pseudo-headers: never APPEND; SET only without disallow_system.
      if (op === 'APPEND') return false;
      if (r.disallow_system) return false;
    } else if (!r.allow_envoy && name.startsWith(ENVOY_PREFIX)) {
      // 7. x-envoy* only with allow_envoy.
      return false;
    }
    // 8. Allowed, if the value is valid.
    return op === 'REMOVE' || isValidValue(name, value);
  }
}

/** An absl::Status-like result of applying a mutation: ok, or an error message for a local reply. */
export type MutationStatus = { ok: true } | { ok: false; message: string };
const OK: MutationStatus = { ok: true };
const err = (message: string): MutationStatus => ({ ok: false, message });

export interface ApplyOptions {
  /** CommonResponse.status == CONTINUE_AND_REPLACE: ":method" may then change regardless of rules. */
  replacingMessage: boolean;
  /** ProcessorState::shouldRemoveContentLength(): content-length in set_headers is skipped. */
  removeContentLength: boolean;
  /** Incremented per rejected mutation (stat rejected_header_mutations). */
  onRejected: () => void;
}

/**
 * mutation_utils.cc applyHeaderMutations. Removals first, then sets. Values come from `raw_value`
 * (runtime guard send_header_raw_value is default-true): a header carrying only `value` is set to
 * the empty string; both set → error (facts §1.3). `append` (BoolValue, default false) chooses
 * addCopy over setCopy; `append_action` and `keep_empty_value` are not consulted (facts §1.3, UNSURE
 * whether newer Envoy reads append_action).
 */
export function applyHeaderMutations(
  mutation: PbHeaderMutation,
  headers: HeaderMap,
  checker: MutationChecker,
  opts: ApplyOptions,
): MutationStatus {
  const removes = mutation.remove_headers ?? [];
  const sets = mutation.set_headers ?? [];
  // responseHeaderSizeCheck: more entries than the HCM header-count limit → error.
  if (removes.length > MAX_HEADERS_COUNT || sets.length > MAX_HEADERS_COUNT) {
    opts.onRejected();
    return err(`Header mutation remove header count ${removes.length} or set header count ${sets.length} exceed the HCM header countlimit ${MAX_HEADERS_COUNT}`);
  }
  for (const raw of removes) {
    if (!headerNameIsValid(raw)) {
      opts.onRejected();
      return err('Invalid character in remove_headers mutation.');
    }
    const name = raw.toLowerCase();
    switch (checker.check('REMOVE', name, '')) {
      case 'OK':
        headers.remove(name);
        break;
      case 'IGNORE':
        opts.onRejected();
        break;
      case 'FAIL':
        opts.onRejected();
        return err(`Invalid attempt to remove ${name}`);
    }
  }
  for (const sh of sets) {
    if (!sh.header) continue;
    if (opts.removeContentLength && (sh.header.key ?? '').toLowerCase() === 'content-length') {
      // Silently skipped when the body mode makes Envoy drop content-length (facts §2.6), before
      // any check of its value: an invalid content-length value here is not an error.
      continue;
    }
    const valueStr = sh.header.value ?? '';
    const rawValue = sh.header.raw_value ? toBuffer(sh.header.raw_value) : Buffer.alloc(0);
    if (valueStr !== '' && rawValue.length > 0) {
      opts.onRejected();
      return err('Only one of value or raw_value in the HeaderValue message should be set.');
    }
    const value = rawValue.toString('latin1');
    const key = sh.header.key ?? '';
    if (!headerNameIsValid(key) || !headerValueIsValid(value)) {
      opts.onRejected();
      return err('Invalid character in set_headers mutation.');
    }
    const name = key.toLowerCase();
    const append = sh.append?.value ?? false;
    const op: CheckOperation = append && headers.has(name) ? 'APPEND' : 'SET';
    let result = checker.check(op, name, value);
    if (opts.replacingMessage && name === ':method') result = 'OK'; // mutation_utils.cc special case
    switch (result) {
      case 'OK':
        if (append) headers.add(name, value);
        else headers.set(name, value);
        break;
      case 'IGNORE':
        opts.onRejected();
        break;
      case 'FAIL':
        opts.onRejected();
        return err(`Invalid attempt to modify ${name}`);
    }
  }
  // headerMutationResultCheck: the resulting map must stay within the HCM limits.
  if (headers.byteSize() > MAX_HEADERS_KB * 1024 || headers.size > MAX_HEADERS_COUNT) {
    opts.onRejected();
    return err(`Header mutation causes end result header count ${headers.size} or header size ${headers.byteSize()} bytes, exceeding the count limit ${MAX_HEADERS_COUNT} or the size limit ${MAX_HEADERS_KB} kilobytes`);
  }
  return OK;
}

/** mutation_utils.cc applyBodyMutations: `body` replaces, `clear_body: true` empties, else unchanged. */
export function applyBodyMutation(mutation: PbBodyMutation, data: Buffer): Buffer {
  const which = mutation.mutation ?? (mutation.body !== undefined ? 'body' : mutation.clear_body !== undefined ? 'clear_body' : undefined);
  if (which === 'body') return toBuffer(mutation.body);
  if (which === 'clear_body') return mutation.clear_body ? Buffer.alloc(0) : data;
  return data;
}

/** The length Envoy compares content-length against: `body_mutation().body().size()` (0 for clear_body). */
export function bodyMutationLength(mutation: PbBodyMutation): number {
  const which = mutation.mutation ?? (mutation.body !== undefined ? 'body' : undefined);
  return which === 'body' ? toBuffer(mutation.body).length : 0;
}
