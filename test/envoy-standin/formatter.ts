/**
 * Envoy substitution formatter (command operators like `%DYNAMIC_METADATA(ns:key)%`), the subset
 * used by the access log `json_format` and by the header_mutation filter. Unknown operators are
 * refused at config load.
 *
 * Rendering modes:
 * - `json`: a template that is exactly one operator yields a typed value (numbers stay numbers,
 *   metadata values keep their JSON type); an unavailable value is `null`.
 * - `header`: unavailable values render as the empty string (header formatters omit empty values),
 *   and the caller skips empty headers unless keep_empty_value.
 */
import type { HeaderMap } from './headers.js';
import type { JsonObject, JsonValue } from './proto.js';
import { UnsupportedConfigError } from './errors.js';

export interface FormatContext {
  dynamicMetadata: Record<string, JsonObject>;
  requestHeaders?: HeaderMap;
  responseHeaders?: HeaderMap;
  responseCode?: number;
  responseCodeDetails?: string;
  routeName?: string;
  upstreamCluster?: string;
  upstreamHost?: string;
  attemptCount?: number;
  durationMs?: number;
  /** %LOCAL_REPLY_BODY%: the body of the local reply being rewritten (local_reply_config). */
  localReplyBody?: string;
  /** %RESPONSE_FLAGS%: short names, comma-joined (StreamInfo response flags). */
  responseFlags?: string[];
}

type Op = (c: FormatContext) => JsonValue | undefined;

export interface FormatTemplate {
  text: string;
  render(c: FormatContext, mode: 'json' | 'header'): JsonValue;
}

function compileOp(name: string, arg: string | undefined, path: string): Op {
  const needArg = () => {
    if (!arg) throw new UnsupportedConfigError(`${path}: %${name}% needs an argument`);
    return arg;
  };
  switch (name) {
    case 'DYNAMIC_METADATA': {
      const [ns, ...keys] = needArg().split(':');
      return (c) => {
        let cur: JsonValue | undefined = c.dynamicMetadata[ns!];
        for (const k of keys) {
          if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !(k in cur)) return undefined;
          cur = cur[k];
        }
        return cur;
      };
    }
    case 'REQ':
    case 'RESP': {
      const h = needArg().toLowerCase();
      if (h.includes('?')) throw new UnsupportedConfigError(`${path}: %${name}(a?b)% alternatives are not implemented`);
      return (c) => (name === 'REQ' ? c.requestHeaders : c.responseHeaders)?.get(h);
    }
    case 'RESPONSE_CODE':
      return (c) => c.responseCode ?? 0;
    case 'RESPONSE_CODE_DETAILS':
      return (c) => c.responseCodeDetails;
    case 'ROUTE_NAME':
      return (c) => c.routeName;
    case 'UPSTREAM_CLUSTER':
      return (c) => c.upstreamCluster;
    case 'UPSTREAM_HOST':
      return (c) => c.upstreamHost;
    case 'UPSTREAM_REQUEST_ATTEMPT_COUNT':
      return (c) => c.attemptCount ?? 0;
    case 'DURATION':
      return (c) => c.durationMs;
    case 'LOCAL_REPLY_BODY':
      return (c) => c.localReplyBody;
    case 'RESPONSE_FLAGS':
      // "-" when no flag is set (StreamInfoFormatter RESPONSE_FLAGS).
      return (c) => (c.responseFlags && c.responseFlags.length > 0 ? c.responseFlags.join(',') : '-');
    default:
      throw new UnsupportedConfigError(`${path}: command operator %${name}% is not implemented by the stand-in`);
  }
}

function toText(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function compileFormat(text: string, path: string): FormatTemplate {
  const parts: (string | Op)[] = [];
  const re = /%([A-Z_]+)(?:\(([^)]*)\))?(?::\d+)?%|%%/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    if (m[0] === '%%') parts.push('%');
    else {
      if (/:\d+%$/.test(m[0])) throw new UnsupportedConfigError(`${path}: length-limited operators are not implemented`);
      parts.push(compileOp(m[1]!, m[2], path));
    }
    last = re.lastIndex;
  }
  if (last < text.length) parts.push(text.slice(last));
  return {
    text,
    render(c, mode) {
      if (mode === 'json' && parts.length === 1 && typeof parts[0] === 'function') {
        return parts[0](c) ?? null;
      }
      return parts.map((p) => (typeof p === 'string' ? p : toText(p(c)))).join('');
    },
  };
}
