/**
 * @module stages/translate
 * The `translate` stage: the attempt filter's stage (once per upstream try, on the chain
 * clusters), which makes each try right for the chain step Envoy picked and gives the client its
 * own dialect back.
 *
 * Everything it needs travels with the attempt, so it is correct when the router stream and
 * this attempt stream reach different gateway replicas: the step comes from the chosen host's
 * endpoint metadata (`stepFromUpstream` on the `request_attributes` envoy.yaml asks for), the
 * client's dialect and stream flags from the route stage's carried metadata (`routeCarry`), the
 * provider credentials from the config. No in-process state is shared with the router stream.
 *
 * - Request body (the attempt filter is configured with no body; declaring this handler makes
 *   the server ask for it BUFFERED through `mode_override`): the model id becomes the step's
 *   `upstreamName`; OpenAI ⇄ Anthropic translation when the client's dialect differs from the
 *   provider's; Mistral's adaptation; `stream_options.include_usage` towards OpenAI for Anthropic clients; `:path`
 *   of the provider's API; the client's credential headers removed and the provider's set
 *   (Envoy keeps one try's header mutations for the next, so every try sets all of them).
 * - Response headers: a status ≥ 400 cools the step (429 for its `retry-after`, 5xx, 529) so new
 *   requests start after it. The response body is asked for (`responseBodyUse: on-demand`) only
 *   when something may change: a translated answer, Mistral's errors, a stream to watch.
 * - Response body: error bodies and JSON answers translated whole; SSE translated event by event
 *   as chunks arrive (never buffered); a stream that ends before its terminal event gets a
 *   well-formed error event in the client's dialect instead of a silent truncation.
 */
import { z } from 'zod';
import type { GatewayConfig } from '../config/schema.js';
import { GatewayError } from '../pipeline/errors.js';
import { slot, type Exchange, type Outcome } from '../pipeline/exchange.js';
import type { PhaseOutput } from '../pipeline/output.js';
import type { BodyChunk } from '../pipeline/phases.js';
import type { Stage, StageDeps, StageFactory } from '../pipeline/stage.js';
import {
  AnthropicToOpenAIStream,
  OpenAIToAnthropicStream,
  TranslationError,
  adaptForMistral,
  anthropicToOpenAIRequest,
  anthropicToOpenAIResponse,
  dialectOfRequestPath,
  openaiToAnthropicRequest,
  openaiToAnthropicResponse,
  streamErrorEvent,
  stripCacheControl,
  translateError,
  type Dialect,
  type OpenAIChatRequest,
  type SseEvent,
} from '../providers/index.js';
import { ANTHROPIC_VERSION, CREDENTIAL_HEADERS, chatPath, credentialHeaders, dialectOfApi, type ProviderApiName } from '../providers/upstream.js';
import { buildCatalog, cooldownUntil, stepFromUpstream, type Catalog, type ChainStep, type CooldownPolicy, type CooldownStore } from '../routing/index.js';
import { cooldownPolicyOf, routeEntryOptions, sharedCooldownStore } from '../routing/services.js';
import { describeError } from '../telemetry/logger.js';
import { dialectError } from './apiSurface.js';
import { isContextLengthError } from '../providers/errors.js';
import { routeCarry, routingConfigOf } from './route.js';

export const translateOptionsSchema = z
  .object({
    /** `max_tokens` for an Anthropic step when the (OpenAI) client set none: Anthropic requires it. */
    defaultMaxTokens: z.number().int().positive().default(4096),
    /**
     * Watch same-dialect SSE answers for their terminal event, so a provider that stops early
     * still ends the client's stream with an error event. Costs a round trip per chunk on
     * streams that need no translation; off, such a stream just ends.
     */
    guardStreams: z.boolean().default(true),
  })
  .strict();

export type TranslateOptions = z.output<typeof translateOptionsSchema>;

/** Why a stream ended early, as the client reads it (no provider detail). */
const CUT_MESSAGE = 'the provider ended the stream before the answer was complete';

/** What this attempt is, once its request was rewritten. */
interface AttemptState {
  readonly step: ChainStep;
  readonly client: Dialect;
  readonly provider: Dialect;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  /** The response body must be read: translated, or watched for its terminal event. */
  mode: 'none' | 'error' | 'json' | 'sse-translate' | 'sse-watch';
  translator: OpenAIToAnthropicStream | AnthropicToOpenAIStream | undefined;
  /** The route whose chain this step belongs to (from the endpoint metadata). */
  readonly route: string | undefined;
  /** The terminal event of a watched stream went by. */
  terminal: boolean;
  /** A 400 is being read to see whether it is a context-length error a later step could take. */
  checkContext: boolean;
}

const attemptState = slot<AttemptState>('translate.attempt');

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True for the event that ends a stream of `dialect` (its normal end, or an in-stream error). */
function isTerminal(e: SseEvent, dialect: Dialect): boolean {
  if (dialect === 'openai') return e.data === '[DONE]' || e.data.startsWith('{"error"');
  return e.event === 'message_stop' || e.event === 'error';
}

interface ProviderCredential {
  readonly api: ProviderApiName;
  readonly apiKey: string | undefined;
}

class TranslateStage implements Stage {
  readonly name = 'translate';
  readonly filter = 'attempt' as const;
  // Not `closed`: Envoy 1.36 ignores an immediate response from an upstream filter (facts §2.8),
  // so a 500 here would hang the try until its timeout. On a bug the try goes on with the headers
  // already decided (credentials are swapped first, so no client key leaks) and the provider's
  // own error answers it.
  readonly failure = 'open' as const;
  readonly responseBodyUse = 'on-demand' as const;
  private readonly catalog: Catalog;
  private readonly credentials = new Map<string, ProviderCredential>();
  private readonly cooldown: CooldownStore;
  private readonly policy: CooldownPolicy;

  constructor(
    private readonly options: TranslateOptions,
    deps: StageDeps,
  ) {
    const config: GatewayConfig = routingConfigOf(deps);
    this.catalog = buildCatalog(config);
    for (const [name, p] of Object.entries(config.providers)) this.credentials.set(name, { api: p.api, apiKey: p.apiKey || undefined });
    // The same store and settings as the route stage, which reads what this stage cools.
    const routing = routeEntryOptions(deps.config?.pipeline.stages);
    this.cooldown = sharedCooldownStore(deps.services, routing.cooldown);
    this.policy = cooldownPolicyOf(routing.cooldown);
  }

  requestBody(x: Exchange, out: PhaseOutput): void {
    const found = stepFromUpstream(x.attributes, this.catalog);
    if (!found) {
      // A host this config does not know (a cluster rendered from another config): leave it as is.
      x.log.warn('attempt host names no step of this config; request passed unchanged', { cluster: x.upstream?.clusterName });
      return;
    }
    const step = found.step;
    const carry = x.carried(routeCarry);
    // Without the carried value (route stage not configured) the path still tells the client's
    // dialect on the first try; later tries see the path an earlier try rewrote.
    const client: Dialect = carry?.dialect ?? dialectOfRequestPath(x.requestHeaders?.get(':path'));
    const json = x.requestJson();
    if (!isObj(json)) throw new GatewayError('INVALID_REQUEST', 'request body must be a JSON object');
    const stream = json['stream'] === true;
    const opts = json['stream_options'];
    const includeUsage = carry?.includeUsage ?? (isObj(opts) && opts['include_usage'] === true);
    // Headers first: whatever happens to the body, the client's key is gone.
    this.setHeaders(x, out, step, client);
    let next: Record<string, unknown>;
    try {
      next = this.rewrite(json, client, step, stream);
    } catch (err) {
      if (!(err instanceof TranslationError)) throw err;
      // The request cannot be expressed for this step: a 400 in the client's dialect, which no
      // retry changes (upstream filters' local replies are not retried, facts §3.4). The route
      // stage ends chains before such steps, so this is rare; Envoy 1.36 ignores it (§2.8).
      out.respond(dialectError(client, 400, `${err.message} (model ${step.model})`, err.param !== undefined ? { param: err.param } : {}));
      return;
    }
    x.editRequest(() => next);
    const provider = dialectOfApi(step.api);
    x.set(attemptState, { step, client, provider, stream, includeUsage, mode: 'none', translator: undefined, terminal: false, checkContext: false, route: found.route });
    // The server settles the response body mode before the response-headers handlers run, so
    // ask now for every answer that may need reading: a translated one (JSON, SSE or error),
    // Mistral's (its error shape is not OpenAI's), a stream to watch for its end.
    if (client !== provider || step.api === 'mistral' || (stream && this.options.guardStreams)) x.wantResponseBody();
    out.setMetadata('ai_gateway', 'provider', step.provider);
    out.setMetadata('ai_gateway', 'model', step.model);
    out.setMetadata('ai_gateway', 'served_model', step.model);
    out.setMetadata('ai_gateway', 'served_step', step.index);
    if (x.logs('debug')) x.log.debug('attempt rewritten', { route: found.route, step: step.index, model: step.model, client, provider });
  }

  /** The body for `step`: model id, dialect, provider quirks. */
  private rewrite(json: Record<string, unknown>, client: Dialect, step: ChainStep, stream: boolean): Record<string, unknown> {
    const model = step.upstreamName;
    if (step.api === 'anthropic') {
      if (client === 'anthropic') return { ...json, model };
      return openaiToAnthropicRequest(json as OpenAIChatRequest, { model, defaultMaxTokens: this.options.defaultMaxTokens });
    }
    let req: OpenAIChatRequest;
    if (client === 'anthropic') req = anthropicToOpenAIRequest(json, { model });
    else {
      // An OpenAI client's stream_options stay its own: adding include_usage would put a chunk
      // with empty `choices` in front of a client that did not ask for it (clients index
      // choices[0]). Such a stream's usage is counted from its text and marked estimated.
      // (Towards OpenAI for an Anthropic client the translator asks for it and consumes it.)
      req = stripCacheControl({ ...(json as OpenAIChatRequest), model });
    }
    return step.api === 'mistral' ? adaptForMistral(req) : req;
  }

  private setHeaders(x: Exchange, out: PhaseOutput, step: ChainStep, client: Dialect): void {
    out.setHeader(':path', chatPath(step.api));
    // The stage may read the answer: it must arrive as the provider wrote it, not compressed.
    out.setHeader('accept-encoding', 'identity');
    const cred = this.credentials.get(step.provider);
    const nativeClient = (client === 'anthropic') === (step.api === 'anthropic') && step.api !== 'mistral';
    if (cred?.apiKey || !nativeClient) {
      // A client's key never reaches a provider it was not meant for; with no key configured for
      // this provider, only a client of the provider's own API keeps its credential.
      for (const h of CREDENTIAL_HEADERS) out.removeHeader(h);
      const creds = credentialHeaders(step.api, cred?.apiKey);
      for (const name in creds) out.setHeader(name, creds[name]!);
    }
    if (step.api === 'anthropic') {
      const v = client === 'anthropic' ? x.requestHeaders?.get('anthropic-version') : undefined;
      out.setHeader('anthropic-version', v ?? ANTHROPIC_VERSION);
    } else {
      out.removeHeader('anthropic-version');
      out.removeHeader('anthropic-beta');
    }
  }

  /** Decides what the body needs (asked for in `requestBody`: see there). */
  responseHeaders(x: Exchange): void {
    const st = x.get(attemptState);
    if (!st) return;
    const status = x.responseStatus ?? 0;
    const translate = st.client !== st.provider;
    if (status >= 400) {
      const until = cooldownUntil(status, x.responseHeaders?.get('retry-after'), Date.now(), this.policy);
      if (until !== undefined) {
        this.cooldown.cool(st.step.cooldownKey, until).catch((err: unknown) => x.log.warn('cooling a step failed', { step: st.step.cooldownKey, error: describeError(err) }));
        if (x.logs('info')) x.log.info('step cooled', { step: st.step.cooldownKey, status, for_ms: until - Date.now() });
      }
      // Mistral's flat error shape is not OpenAI's either.
      if (translate || st.step.api === 'mistral') st.mode = 'error';
      // A 400 may say the prompt does not fit this step: when a later step of the chain has a
      // larger window, read the body (BUFFERED: Envoy holds the headers until the body answer,
      // whose header mutations then apply, facts §1.1) to turn it into a retry.
      if (status === 400 && this.largerWindowLater(st)) {
        st.checkContext = true;
        x.wantResponseBody();
      }
      return;
    }
    if (x.responseIsEventStream) {
      if (translate) {
        st.mode = 'sse-translate';
        st.translator = st.client === 'openai' ? new AnthropicToOpenAIStream({ includeUsage: st.includeUsage }) : new OpenAIToAnthropicStream();
      } else if (this.options.guardStreams) st.mode = 'sse-watch';
    } else if (translate) st.mode = 'json';
  }

  responseBody(x: Exchange, out: PhaseOutput, chunk: BodyChunk): void {
    const st = x.get(attemptState);
    if (!st) return;
    if (st.checkContext && chunk.endOfStream && isContextLengthError(x.responseStatus ?? 400, chunk.bytes)) {
      // Envoy retries only on statuses: answer this try as a 503 (in the chain's retriable codes,
      // checked by largerWindowLater), so the router moves to the next priority; a context-length
      // error is the request's, not the step's fault, so nothing is cooled.
      out.setHeader(':status', '503');
      out.setHeader('x-gateway-retry-reason', 'context-length');
      out.setMetadata('ai_gateway', 'context_exceeded', st.step.model);
      if (x.logs('info')) x.log.info('prompt does not fit this step; retrying on a larger window', { model: st.step.model });
      return;
    }
    switch (st.mode) {
      case 'error': {
        const status = x.responseStatus ?? 500;
        const t = translateError(st.client, status, chunk.bytes);
        this.replaceWhole(out, JSON.stringify(t.body));
        return;
      }
      case 'json': {
        let body: unknown;
        try {
          body = JSON.parse(chunk.bytes.toString('utf8'));
        } catch {
          x.log.warn('provider answer is not JSON; passed through untranslated', { model: st.step.model });
          return;
        }
        const translated = st.client === 'openai' ? anthropicToOpenAIResponse(body) : openaiToAnthropicResponse(body);
        this.replaceWhole(out, JSON.stringify(translated));
        return;
      }
      case 'sse-translate': {
        const t = st.translator!;
        let text = '';
        for (const e of x.responseEvents(chunk)) text += t.push(e);
        if (chunk.endOfStream) text += this.cut(x, st, t.terminate(CUT_MESSAGE));
        out.replaceBody(text);
        return;
      }
      case 'sse-watch': {
        for (const e of x.responseEvents(chunk)) if (!st.terminal && isTerminal(e, st.provider)) st.terminal = true;
        if (chunk.endOfStream && !st.terminal) {
          const tail = this.cut(x, st, streamErrorEvent(st.client, 502, { message: CUT_MESSAGE }));
          out.replaceBody(Buffer.concat([chunk.bytes, Buffer.from(tail)]));
        }
        return;
      }
      default:
        return;
    }
  }

  /**
   * True when a later step of this try's chain has a larger context window, and the chain
   * retries on 503 (what a context-length 400 is answered as).
   */
  private largerWindowLater(st: AttemptState): boolean {
    const route = st.route === undefined ? undefined : this.catalog.routeByName.get(st.route);
    if (!route || !route.retry.statusCodes.includes(503)) return false;
    const here = st.step.contextWindow ?? 0;
    return route.steps.some((s) => s.index > st.step.index && (s.contextWindow ?? 0) > here);
  }

  /**
   * A BUFFERED body replaced whole. Envoy fails the answer when a content-length header does not
   * match the new body (facts §2.11); setting the new length is not enough here, because the
   * response-headers override left the attempt filter's configured header mode (SKIP) in force,
   * under which Envoy silently skips a content-length in set_headers. Removing it always works:
   * the answer goes out chunked.
   */
  private replaceWhole(out: PhaseOutput, text: string): void {
    out.replaceBody(text);
    out.removeHeader('content-length');
  }

  /** Logs an early end (once) and returns the closing text. */
  private cut(x: Exchange, st: AttemptState, text: string): string {
    if (text.includes(CUT_MESSAGE)) x.log.warn('provider stream ended before its terminal event; client stream closed with an error event', { model: st.step.model, provider: st.step.provider });
    return text;
  }

  finish(x: Exchange, outcome: Outcome): void {
    const st = x.get(attemptState);
    if (st && outcome.kind === 'no-response') {
      // This try got no response at all: a connection failure, a reset before the response
      // started, or a per-try timeout (Envoy resets the attempt; local replies skip ext_proc).
      // Cool the step like a 503, so new requests start past it. (A client that left before any
      // answer looks the same from here; the cooldown is short.)
      const until = cooldownUntil(503, undefined, Date.now(), this.policy);
      if (until !== undefined) {
        this.cooldown.cool(st.step.cooldownKey, until).catch((err: unknown) => x.log.warn('cooling a step failed', { step: st.step.cooldownKey, error: describeError(err) }));
        if (x.logs('info')) x.log.info('step cooled', { step: st.step.cooldownKey, reason: 'no response', for_ms: until - Date.now() });
      }
    }
    if (st && outcome.kind === 'client-gone' && st.stream && st.mode !== 'none' && !(st.translator?.finished ?? st.terminal)) {
      // The upstream connection dropped mid-stream (Envoy resets the client's stream: no last
      // chunk reaches us to close it properly). Retrying is impossible once headers went out.
      x.log.warn('stream reset before its terminal event', { model: st.step.model, provider: st.step.provider });
    }
  }
}

/** The translate stage (attempt filter). */
export const translateStage: StageFactory<TranslateOptions> = {
  name: 'translate',
  options: translateOptionsSchema,
  create: (options, deps) => new TranslateStage(options, deps),
};
