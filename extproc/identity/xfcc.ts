/**
 * @module identity/xfcc
 * Parser for Envoy's `x-forwarded-client-cert` header (XFCC), as Envoy and Istio sidecars set it:
 *
 *     By=spiffe://cluster.local/ns/gw/sa/gw;Hash=ab12…;Subject="CN=a, O=b";URI=spiffe://cluster.local/ns/shop/sa/checkout
 *
 * Grammar (Envoy docs, "x-forwarded-client-cert"): elements separated by `,`; in an element,
 * `key=value` pairs separated by `;`; a value may be double-quoted, and inside quotes `,` `;` `=`
 * are literal and `\"` is a quote. Keys: By, Hash, Cert, Chain, Subject, URI, DNS (URI and DNS may
 * repeat). Each proxy hop *appends* an element, so the element for the peer that connected to
 * our own proxy is the last one.
 *
 * Never throws: bad input yields an {@link XfccError} with a code, for a clear refusal upstream.
 */

/** One XFCC element (one hop). Keys are normalised to these names. */
export interface XfccElement {
  by?: string;
  hash?: string;
  cert?: string;
  chain?: string;
  subject?: string;
  uri: string[];
  dns: string[];
}

/** Why a header did not parse. */
export type XfccErrorCode =
  | 'empty'
  | 'too_long'
  | 'unterminated_quote'
  | 'missing_equals'
  | 'unknown_key'
  | 'duplicate_key'
  | 'empty_element'
  | 'garbage_after_quote'
  | 'bad_escape';

export interface XfccError {
  readonly code: XfccErrorCode;
  /** Human text without header contents (it may hold identities, so it is safe to log). */
  readonly message: string;
  /** Offset in the header where parsing stopped. */
  readonly offset: number;
}

export type XfccResult = { ok: true; elements: XfccElement[] } | { ok: false; error: XfccError };

/** Largest header accepted (a Cert + Chain in URL-encoded PEM fits easily). */
export const XFCC_MAX_LENGTH = 64 * 1024;

const singleKeys = { by: 'by', hash: 'hash', cert: 'cert', chain: 'chain', subject: 'subject' } as const;

function fail(code: XfccErrorCode, message: string, offset: number): XfccResult {
  return { ok: false, error: { code, message, offset } };
}

/** Parses a whole XFCC header value into its elements, in header order. */
export function parseXfcc(header: string): XfccResult {
  if (header.length > XFCC_MAX_LENGTH) return fail('too_long', `header longer than ${XFCC_MAX_LENGTH} characters`, XFCC_MAX_LENGTH);
  const elements: XfccElement[] = [];
  const n = header.length;
  let i = 0;
  if (header.trim() === '') return fail('empty', 'header is empty', 0);
  for (;;) {
    // One element: pairs until ',' or end.
    const el: XfccElement = { uri: [], dns: [] };
    let pairs = 0;
    for (;;) {
      while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
      if (i >= n || header[i] === ',') break;
      const keyStart = i;
      while (i < n && header[i] !== '=' && header[i] !== ';' && header[i] !== ',') i++;
      if (i >= n || header[i] !== '=') return fail('missing_equals', 'a pair has no "="', i);
      const key = header.slice(keyStart, i).trim().toLowerCase();
      i++; // '='
      let value: string;
      if (header[i] === '"') {
        i++;
        let out = '';
        let closed = false;
        while (i < n) {
          const c = header[i]!;
          if (c === '\\') {
            const next = header[i + 1];
            if (next === undefined) return fail('bad_escape', 'backslash at end of header', i);
            // Envoy escapes only '"' (and a backslash before it); keep other escapes verbatim.
            if (next === '"' || next === '\\') {
              out += next;
              i += 2;
            } else {
              out += c;
              i++;
            }
            continue;
          }
          if (c === '"') {
            closed = true;
            i++;
            break;
          }
          out += c;
          i++;
        }
        if (!closed) return fail('unterminated_quote', 'a quoted value is not closed', i);
        while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
        if (i < n && header[i] !== ';' && header[i] !== ',') return fail('garbage_after_quote', 'text after a closing quote', i);
        value = out;
      } else {
        const start = i;
        while (i < n && header[i] !== ';' && header[i] !== ',') {
          if (header[i] === '"') return fail('unterminated_quote', 'a quote inside an unquoted value', i);
          i++;
        }
        value = header.slice(start, i).trim();
      }
      if (key === 'uri') el.uri.push(value);
      else if (key === 'dns') el.dns.push(value);
      else if (key in singleKeys) {
        const k = singleKeys[key as keyof typeof singleKeys];
        if (el[k] !== undefined) return fail('duplicate_key', `key ${k} appears twice in one element`, keyStart);
        el[k] = value;
      } else {
        return fail('unknown_key', 'unknown key (expected By, Hash, Cert, Chain, Subject, URI, DNS)', keyStart);
      }
      pairs++;
      if (i < n && header[i] === ';') i++;
    }
    if (pairs === 0) return fail('empty_element', 'an element has no key=value pair', i);
    elements.push(el);
    if (i >= n) break;
    i++; // ','
  }
  return { ok: true, elements };
}
