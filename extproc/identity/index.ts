/**
 * @module identity
 * Caller identity: XFCC / SPIFFE parsing, source order, credential hashing. Plain functions: the
 * `identity` stage calls them.
 */
export { parseXfcc, XFCC_MAX_LENGTH, type XfccElement, type XfccError, type XfccErrorCode, type XfccResult } from './xfcc.js';
export { parseSpiffeId, type SpiffeId } from './spiffe.js';
export { identityOptionsSchema, identitySources, callerIdRe, type IdentityOptions, type IdentitySource } from './options.js';
export {
  resolveIdentity,
  credentialId,
  type Identity,
  type IdentityRefusal,
  type IdentityResult,
  type HeaderLookup,
  NO_HEADERS,
} from './resolve.js';
