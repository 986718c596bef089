/**
 * @module stages/apiSurface
 * The parts of the provider APIs a client touches besides chat, answered by the gateway itself
 * (the `route` stage calls these on request headers, so they cost no body round trip):
 * `GET /v1/models` and `/v1/models/{id}` from the routing catalog, in OpenAI's list shape or, when
 * the request carries Anthropic's headers, Anthropic's; a clear 404 in the client's dialect for
 * any other path under `/v1/` the gateway does not serve (instead of a silent pass to a random
 * provider); and the error answers of the route stage (unknown model) in the exact shape each SDK
 * maps to its own exception (`model_not_found`, `not_found_error`).
 */
import type { ImmediateReply } from '../pipeline/output.js';
import { errorBody, type Dialect } from '../providers/index.js';
import type { Catalog, CatalogModel } from '../routing/index.js';

/** A client error in `dialect`'s exact shape (status, type from the status, optional code and param). */
export function dialectError(dialect: Dialect, status: number, message: string, extra: { code?: string; param?: string } = {}): ImmediateReply {
  const body = errorBody(dialect, status, { message, ...(extra.code !== undefined ? { code: extra.code } : {}), ...(extra.param !== undefined ? { param: extra.param } : {}) });
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), details: `gateway_${extra.code ?? `status_${status}`}` };
}

/** The client's text, bounded and stripped of control characters, for an error message. */
export function quoteClientText(text: string, max = 100): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f]/g, '');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** 404 for a path under /v1/ that the gateway does not serve. */
export function unknownPathReply(dialect: Dialect, path: string): ImmediateReply {
  const q = path.indexOf('?');
  const p = quoteClientText(q < 0 ? path : path.slice(0, q), 200);
  return dialectError(dialect, 404, `the gateway does not serve ${p} (it serves /v1/chat/completions, /v1/messages, /v1/models, /v1/embeddings, /v1/responses and /v1/messages/count_tokens)`, { code: 'unknown_url' });
}

/** 404 for a model the catalog does not know. */
export function unknownModelReply(dialect: Dialect, model: string): ImmediateReply {
  return dialectError(dialect, 404, `The model \`${quoteClientText(model)}\` does not exist or is not served by this gateway.`, { code: 'model_not_found', param: 'model' });
}

/** Catalog models in config order, as the model list shows them. */
function listed(catalog: Catalog): CatalogModel[] {
  return [...catalog.models.values()];
}

function openaiModel(m: CatalogModel, created: number): Record<string, unknown> {
  return { id: m.name, object: 'model', created, owned_by: m.provider };
}

function anthropicModel(m: CatalogModel, createdAt: string): Record<string, unknown> {
  return { type: 'model', id: m.name, display_name: m.name, created_at: createdAt };
}

/**
 * The answer to `GET /v1/models` (list) or `/v1/models/{id}` (one model, aliases accepted), in
 * the client's dialect. `createdAt` is when this catalog was loaded: the gateway has no release
 * dates for the models it routes to.
 */
export function modelsReply(catalog: Catalog, dialect: Dialect, modelId: string | undefined, createdAt: Date): ImmediateReply {
  const created = Math.floor(createdAt.getTime() / 1000);
  const iso = createdAt.toISOString();
  let body: unknown;
  if (modelId !== undefined) {
    const m = catalog.byName.get(modelId);
    if (!m) return unknownModelReply(dialect, modelId);
    body = dialect === 'anthropic' ? anthropicModel(m, iso) : openaiModel(m, created);
  } else if (dialect === 'anthropic') {
    const data = listed(catalog).map((m) => anthropicModel(m, iso));
    body = { data, has_more: false, first_id: data[0]?.['id'] ?? null, last_id: data[data.length - 1]?.['id'] ?? null };
  } else {
    body = { object: 'list', data: listed(catalog).map((m) => openaiModel(m, created)) };
  }
  return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), details: 'gateway_models' };
}
