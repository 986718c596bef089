/**
 * @module providers/upstream
 * What a request needs on the wire to reach a provider of a given API: its path and its
 * credential headers. The attempt stage rewrites every upstream try with these; the headers a
 * client may have sent for its own provider are listed so they can be removed, because a
 * client's key must never reach another provider (and Envoy keeps one attempt's header
 * mutations for the next, facts §3.4, so a key set for one step must not leak to the next).
 */
import type { Dialect } from './types.js';

/** Wire schema of a provider (config `providers.*.api`). */
export type ProviderApiName = 'openai' | 'anthropic' | 'mistral';

/** The Anthropic API version the gateway speaks when it writes Anthropic requests itself. */
export const ANTHROPIC_VERSION = '2023-06-01';

/** Headers that carry a credential or pin a provider API, any of which a client may send. */
export const CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'x-api-key', 'api-key', 'openai-organization', 'openai-project'];

/** The dialect a provider API speaks (Mistral speaks OpenAI's, with quirks). */
export function dialectOfApi(api: ProviderApiName): Dialect {
  return api === 'anthropic' ? 'anthropic' : 'openai';
}

/** The chat path of a provider API. */
export function chatPath(api: ProviderApiName): string {
  return api === 'anthropic' ? '/v1/messages' : '/v1/chat/completions';
}

/**
 * The credential headers for `api` with `apiKey`: `authorization: Bearer` for OpenAI and Mistral,
 * `x-api-key` for Anthropic. Empty when no key is configured.
 */
export function credentialHeaders(api: ProviderApiName, apiKey: string | undefined): Record<string, string> {
  if (!apiKey) return {};
  return api === 'anthropic' ? { 'x-api-key': apiKey } : { authorization: `Bearer ${apiKey}` };
}
