/**
 * @module providers/paths
 * Which provider API a request path belongs to. The path decides the client's dialect for
 * everything the gateway says back (errors included), so it is recognised before the body is read.
 */
import type { Dialect } from './types.js';

/** The APIs the gateway recognises under `/v1/`. */
export type ApiKind = 'chat' | 'messages' | 'responses' | 'embeddings' | 'models' | 'count_tokens';

export interface PathInfo {
  readonly dialect: Dialect;
  readonly api: ApiKind;
  /** For `/v1/models/{id}`: the model id asked for. */
  readonly modelId?: string;
}

const CHAT: PathInfo = Object.freeze({ dialect: 'openai', api: 'chat' });
const MESSAGES: PathInfo = Object.freeze({ dialect: 'anthropic', api: 'messages' });
const COUNT: PathInfo = Object.freeze({ dialect: 'anthropic', api: 'count_tokens' });
const RESPONSES: PathInfo = Object.freeze({ dialect: 'openai', api: 'responses' });
const EMBEDDINGS: PathInfo = Object.freeze({ dialect: 'openai', api: 'embeddings' });
const MODELS_OPENAI: PathInfo = Object.freeze({ dialect: 'openai', api: 'models' });
const MODELS_ANTHROPIC: PathInfo = Object.freeze({ dialect: 'anthropic', api: 'models' });

/**
 * The API and client dialect of a request path (query string ignored, a trailing slash
 * tolerated), or undefined for a path the gateway does not serve. `/v1/models` exists in both
 * dialects: `anthropic` says the request carried Anthropic's headers (`anthropic-version` or
 * `x-api-key`), which is how the Anthropic SDK's model listing differs from OpenAI's.
 */
export function dialectOfPath(path: string, hint?: { anthropic?: boolean }): PathInfo | undefined {
  const q = path.indexOf('?');
  let p = q === -1 ? path : path.slice(0, q);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  switch (p) {
    case '/v1/chat/completions':
      return CHAT;
    case '/v1/messages':
      return MESSAGES;
    case '/v1/messages/count_tokens':
      return COUNT;
    case '/v1/responses':
      return RESPONSES;
    case '/v1/embeddings':
      return EMBEDDINGS;
    case '/v1/models':
      return hint?.anthropic ? MODELS_ANTHROPIC : MODELS_OPENAI;
  }
  if (p.startsWith('/v1/models/') && p.length > '/v1/models/'.length) {
    let modelId = p.slice('/v1/models/'.length);
    try {
      modelId = decodeURIComponent(modelId);
    } catch {
      // A malformed escape: keep the raw text; the catalog lookup will not find it.
    }
    return { dialect: hint?.anthropic ? 'anthropic' : 'openai', api: 'models', modelId };
  }
  if (p.startsWith('/v1/responses/')) return RESPONSES;
  return undefined;
}

/** The dialect to answer an unrecognised path in: Anthropic when its headers are present, else OpenAI. */
export function dialectForUnknownPath(hint?: { anthropic?: boolean }): Dialect {
  return hint?.anthropic ? 'anthropic' : 'openai';
}

/** The client's dialect by its request path (`:path`): OpenAI for a path the gateway does not know. */
export function dialectOfRequestPath(path: string | undefined): Dialect {
  return dialectOfPath(path ?? '')?.dialect ?? 'openai';
}
