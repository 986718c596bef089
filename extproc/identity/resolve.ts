/**
 * @module identity/resolve
 * Who is calling: the first configured source present decides (SPIFFE URI in XFCC, a trusted
 * header, or a hash of the API credential), else the default caller or a refusal.
 *
 * The raw credential never leaves this module: an API key becomes `key:<first 16 hex of SHA-256>`.
 */
import { sha256Hex } from '../digest.js';
import { parseXfcc } from './xfcc.js';
import { parseSpiffeId } from './spiffe.js';
import { callerIdRe, type IdentityOptions, type IdentitySource } from './options.js';

/** A resolved caller. */
export interface Identity {
  /** Caller id used for partitions, limits, budgets and logs: never a raw credential. */
  readonly caller: string;
  /** Which source gave it (`default` when none was present). */
  readonly source: IdentitySource | 'default';
  /** From an Istio SPIFFE ID `…/ns/<ns>/sa/<sa>`. */
  readonly namespace?: string;
  readonly serviceAccount?: string;
}

/** Why a request has no acceptable identity (`message` is safe to show and log: it holds no header value). */
export interface IdentityRefusal {
  readonly code: 'missing' | 'invalid_xfcc' | 'untrusted_domain' | 'invalid_header' | 'invalid_credential';
  readonly message: string;
}

export type IdentityResult = { ok: true; identity: Identity } | { ok: false; refusal: IdentityRefusal };

/** Reads one request header by lower-case name (all values joined with `,`), or undefined. */
export type HeaderLookup = (name: string) => string | undefined;

/** The lookup of a request without headers. */
export const NO_HEADERS: HeaderLookup = () => undefined;

const MAX_CREDENTIAL_LENGTH = 4096;
const credentialRe = /^[\x21-\x7e]+$/;

/** `key:` + first 16 hex digits of SHA-256 of the credential. */
export function credentialId(credential: string): string {
  return `key:${sha256Hex(credential).slice(0, 16)}`;
}

type Attempt = { kind: 'absent' } | { kind: 'found'; identity: Identity } | { kind: 'invalid'; refusal: IdentityRefusal };
const absent: Attempt = { kind: 'absent' };
const invalid = (code: IdentityRefusal['code'], message: string): Attempt => ({ kind: 'invalid', refusal: { code, message } });

function fromXfcc(headers: HeaderLookup, options: IdentityOptions): Attempt {
  const raw = headers('x-forwarded-client-cert');
  if (raw === undefined) return absent;
  const parsed = parseXfcc(raw);
  if (!parsed.ok) return invalid('invalid_xfcc', `x-forwarded-client-cert does not parse: ${parsed.error.message} (${parsed.error.code})`);
  // The element our own proxy appended: the peer that connected to it.
  const last = parsed.elements[parsed.elements.length - 1]!;
  for (const uri of last.uri) {
    const id = parseSpiffeId(uri);
    if (!id) continue;
    if (options.trustDomains.length > 0 && !options.trustDomains.includes(id.trustDomain)) {
      return invalid('untrusted_domain', 'x-forwarded-client-cert: SPIFFE trust domain is not accepted');
    }
    return {
      kind: 'found',
      identity: {
        caller: id.id,
        source: 'xfcc',
        ...(id.namespace !== undefined ? { namespace: id.namespace, serviceAccount: id.serviceAccount } : {}),
      },
    };
  }
  return invalid('invalid_xfcc', 'x-forwarded-client-cert: the last element has no SPIFFE URI');
}

function fromHeader(headers: HeaderLookup, options: IdentityOptions): Attempt {
  const raw = headers(options.header);
  if (raw === undefined) return absent;
  const v = raw.trim();
  if (v.length === 0 || v.length > options.headerMaxLength || !callerIdRe.test(v)) {
    return invalid('invalid_header', `${options.header}: 1 to ${options.headerMaxLength} characters of A-Z a-z 0-9 . _ : @ / * + = - expected`);
  }
  return { kind: 'found', identity: { caller: v, source: 'header' } };
}

function fromApiKey(headers: HeaderLookup, options: IdentityOptions): Attempt {
  let credential: string | undefined;
  const auth = headers('authorization');
  if (auth !== undefined) {
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) credential = m[1];
  }
  if (credential === undefined) credential = headers('x-api-key')?.trim();
  if (credential === undefined || credential === '') return absent;
  if (credential.length > MAX_CREDENTIAL_LENGTH || !credentialRe.test(credential)) {
    return invalid('invalid_credential', 'API credential has characters or a length no key has');
  }
  const id = credentialId(credential);
  const named = options.apiKeys[id.slice(4)];
  return { kind: 'found', identity: { caller: named ?? id, source: 'api-key' } };
}

const sourceFns: Record<IdentitySource, (h: HeaderLookup, o: IdentityOptions) => Attempt> = {
  xfcc: fromXfcc,
  header: fromHeader,
  'api-key': fromApiKey,
};

/** Resolves the caller of one request. Never throws. */
export function resolveIdentity(headers: HeaderLookup, options: IdentityOptions): IdentityResult {
  for (const source of options.sources) {
    let attempt: Attempt;
    try {
      attempt = sourceFns[source](headers, options);
    } catch {
      // Defensive: a header accessor that throws counts as an unreadable source.
      attempt = invalid(source === 'xfcc' ? 'invalid_xfcc' : source === 'header' ? 'invalid_header' : 'invalid_credential', `${source}: unreadable`);
    }
    if (attempt.kind === 'found') return { ok: true, identity: attempt.identity };
    if (attempt.kind === 'invalid' && options.onInvalid === 'refuse') return { ok: false, refusal: attempt.refusal };
  }
  if (options.refuse) return { ok: false, refusal: { code: 'missing', message: 'no caller identity (configured sources: ' + options.sources.join(', ') + ')' } };
  return { ok: true, identity: { caller: options.defaultCaller, source: 'default' } };
}
