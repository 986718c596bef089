/**
 * @module stages/identity
 * Who is calling (extproc/identity/): the SPIFFE URI Envoy or Istio put in
 * `x-forwarded-client-cert`, a trusted header, or a hash of the API credential, in the configured
 * order. Runs on request headers, so it costs no body round trip. The caller decides cache
 * partitions, limits, budgets and cost views; it goes to the access log as dynamic metadata
 * `ai_gateway.caller`. A request with no acceptable identity gets the default caller or a 401 in
 * the client's dialect. A raw credential never leaves the identity module.
 */
import { identityOptionsSchema, NO_HEADERS, resolveIdentity, type Identity, type IdentityOptions } from '../identity/index.js';
import { slot } from '../pipeline/exchange.js';
import type { StageFactory } from '../pipeline/stage.js';

/** Slot written by `identity`: the resolved caller. */
export const callerIdentity = slot<Identity>('callerIdentity');

/** The identity stage. */
export const identityStage: StageFactory<IdentityOptions> = {
  name: 'identity',
  options: identityOptionsSchema,
  writes: [callerIdentity],
  create: (options) => ({
    name: 'identity',
    // A bug here must not let an unidentified request through on someone else's budget.
    failure: 'closed',
    requestHeaders(x, out) {
      // A bound method, not an arrow function made here (HOT_PATH_FUNCTIONS in server/processStream).
      const headers = x.requestHeaders;
      const result = resolveIdentity(headers ? headers.joined.bind(headers) : NO_HEADERS, options);
      if (!result.ok) {
        if (x.logs('info')) x.log.info('caller refused', { reason: result.refusal.code });
        out.fail('UNAUTHENTICATED', result.refusal.message, { details: `gateway_identity_${result.refusal.code}` });
        return;
      }
      x.set(callerIdentity, result.identity);
      out.setMetadata('ai_gateway', 'caller', result.identity.caller);
    },
  }),
};
