/**
 * @module stages/pii
 * The `pii` stage (router filter): finds personal data and secrets in every request body
 * (`extproc/pii/`), replaces them before Envoy forwards the request, and puts the originals back
 * into the answer the client receives, JSON or SSE, placeholders split anywhere.
 *
 * Request: the dialect comes from the path (`/v1/messages` → Anthropic, else OpenAI). Chat
 * Completions and Messages bodies are walked field by field (`pii/walker`); any other body
 * (embeddings, the Responses API, an unknown path) has every string but `model` rewritten, so
 * nothing leaves unscanned (answers on those APIs are not restored). The actions in force come
 * from the options and their `rules` for the route (routing's slot, when routing ran first) and
 * caller (identity's slot, when present). A `block` type refuses the request in the client's
 * dialect, naming types only. A changed body goes through
 * `x.editRequest`, so later stages (cache, routing, translation) see the redacted request and the
 * body is serialised once. The session (placeholder table and counts) lives in `piiSessionSlot`
 * for later stages of the same request (the cache never stores an answer to a request with PII);
 * counts per type go to `usage.pii` and to dynamic metadata `ai_gateway.pii_entities`.
 *
 * Response: asked for only when a placeholder was issued (`responseBodyUse: 'on-demand'`), so a
 * request without PII pays nothing on the response path. `accept-encoding` is dropped from such
 * requests so the answer comes back as text that can be restored.
 *
 * Failure: `closed` by default (a detection bug or a timeout refuses the request rather than
 * send it unredacted); a config entry's `failure: open` is the explicit opt-out. The pipeline's
 * per-entry `failure` is the one knob: the module option of the same name (which the registry
 * never passes through, since `failure` is a common key) only sets the stage's default.
 *
 * Never leaks: logs, metadata and errors carry entity types and counts; an error thrown while
 * handling data is replaced by one naming only its class, since parser messages quote input.
 */
import { routeContribution, piiContribution, type PiiContribution } from '../usage/contributions.js';
import { PiiEngine, piiOptionsSchema, rewriteRequest, rewriteRequestAsync, windowChars, type Dialect, type PiiOptions, type PiiSession } from '../pii/index.js';
import { GatewayError } from '../pipeline/errors.js';
import { slot, type Exchange } from '../pipeline/exchange.js';
import type { PhaseOutput } from '../pipeline/output.js';
import type { BodyChunk } from '../pipeline/phases.js';
import type { StageFactory } from '../pipeline/stage.js';
import { dialectOfPath, type ApiKind } from '../providers/paths.js';
import { callerIdentity } from './identity.js';
import { routeChoice } from './route.js';
import { SseRestore, restoreJsonAnswer } from './piiRestore.js';

/**
 * What `pii` found in this request, for later stages. `session.counts` holds entities replaced
 * per type, `session.table.size` the placeholders issued. Never log or store the session: it
 * holds the original values.
 */
export const piiSessionSlot = slot<PiiSession>('piiSession');

/** Entities the model produced itself in its answer, per type (`scanResponses`). Counts only. */
export const piiResponseCounts = slot<PiiContribution>('piiResponseCounts');

/** Per-exchange response state (private to the stage). */
interface RestoreState {
  readonly session: PiiSession;
  readonly dialect: Dialect;
  readonly restore: boolean;
  readonly scan: boolean;
  /** Answer text seen so far when scanning (bounded). */
  scanned: string[];
  scannedChars: number;
  sse: SseRestore | undefined;
  /** Earlier chunks of a non-SSE body that arrived in pieces. */
  pending: Buffer[] | undefined;
}
const restoreState = slot<RestoreState>('pii.restore');

/** Most answer text kept for `scanResponses` counting. */
const maxScannedChars = 4 * 1024 * 1024;

/** Thrown in place of an error raised while handling request or answer data. */
class PiiStageError extends Error {
  constructor(phase: string, err: unknown) {
    // Only the class: messages of JSON or regex errors may quote the data being handled.
    super(`pii ${phase} failed (${err instanceof Error ? err.name : typeof err})`);
    this.name = 'PiiStageError';
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function countsOf(map: ReadonlyMap<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [t, n] of [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) if (n > 0) out[t] = n;
  return out;
}

/** `EMAIL:2,PHONE:1` for log lines (fields are scalars). */
function countsText(counts: Record<string, number>): string {
  return Object.entries(counts).map(([t, n]) => `${t}:${n}`).join(',');
}

/** Every string value of `v` rewritten (copy-on-write), except `model`: for bodies the walker does not know. */
function rewriteStrings(v: unknown, session: PiiSession, key?: string): unknown {
  if (typeof v === 'string') return key === 'model' ? v : session.rewrite(v);
  if (Array.isArray(v)) {
    let copy: unknown[] | undefined;
    v.forEach((item, i) => {
      const r = rewriteStrings(item, session);
      if (r !== item) (copy ??= v.slice())[i] = r;
    });
    return copy ?? v;
  }
  if (isObj(v)) {
    let copy: Record<string, unknown> | undefined;
    for (const k of Object.keys(v)) {
      const r = rewriteStrings(v[k], session, k);
      if (r !== v[k]) (copy ??= { ...v })[k] = r;
    }
    return copy ?? v;
  }
  return v;
}

/** Reserves placeholder-shaped literals in every string of `v` (before any rewrite). */
function reserveStrings(v: unknown, session: PiiSession): void {
  if (typeof v === 'string') session.reserve(v);
  else if (Array.isArray(v)) for (const item of v) reserveStrings(item, session);
  else if (isObj(v)) for (const k of Object.keys(v)) reserveStrings(v[k], session);
}

/** The `pii` stage's factory. */
export const piiStage: StageFactory<PiiOptions> = {
  name: 'pii',
  options: piiOptionsSchema,
  writes: [piiSessionSlot, piiContribution, piiResponseCounts],
  create(options) {
    const engine = new PiiEngine(options);
    const blockedMessage = (types: readonly string[]): string =>
      `request contains data the gateway does not send: ${[...types].sort().join(', ')}`;

    function requestBody(x: Exchange, out: PhaseOutput): void | Promise<void> {
      const body = x.requestJson(); // an unreadable body throws GatewayError: onInvalidRequest applies
      if (!isObj(body)) return;
      const info = dialectOfPath(x.requestHeaders?.get(':path') ?? '');
      const api: ApiKind | undefined = info?.api;
      const dialect: Dialect = info?.dialect ?? 'openai';
      const session = engine.session({ route: x.get(routeChoice)?.route ?? x.get(routeContribution)?.route, caller: x.get(callerIdentity)?.caller });
      x.set(piiSessionSlot, session);
      if (session.idle) return;
      const chatLike = api === 'chat' || api === 'messages';
      if (chatLike || api === 'count_tokens') {
        // Small bodies synchronously (the pipeline's fast path); large ones yield between windows.
        if ((x.requestBody?.length ?? 0) <= windowChars) {
          const r = rewriteRequest(body, dialect, session);
          return decide(x, out, session, r.changed ? r.body : undefined, r.blocked, dialect, chatLike);
        }
        return rewriteRequestAsync(body, dialect, session).then((r) => decide(x, out, session, r.changed ? r.body : undefined, r.blocked, dialect, chatLike));
      }
      // Embeddings, Responses API, unknown paths: every string but `model`, so nothing leaves unscanned.
      reserveStrings(body, session);
      const replaced = rewriteStrings(body, session);
      return decide(x, out, session, replaced !== body ? replaced : undefined, [...session.blocked], dialect, false);
    }

    /** Refuses, or records the findings and applies the rewritten body. */
    function decide(
      x: Exchange,
      out: PhaseOutput,
      session: PiiSession,
      replacement: unknown,
      blocked: readonly string[],
      dialect: Dialect,
      answersText: boolean,
    ): void {
      const counts = countsOf(session.counts);
      const found = Object.keys(counts).length > 0;
      if (found) {
        x.set(piiContribution, counts);
        out.setMetadata('ai_gateway', 'pii_entities', counts);
      }
      if (blocked.length > 0) {
        if (x.logs('info')) x.log.info('pii blocked request', { entities: countsText(counts), blocked: [...blocked].sort().join(',') });
        out.fail('INVALID_REQUEST', blockedMessage(blocked), { details: 'gateway_pii_blocked' });
        return;
      }
      if (found && x.logs('debug')) x.log.debug('pii entities replaced', { entities: countsText(counts) });
      if (replacement !== undefined) x.editRequest(() => replacement);
      const restore = options.restore && answersText && session.table.size > 0;
      const scan = options.scanResponses && answersText;
      if (restore || scan) {
        x.set(restoreState, { session, dialect, restore, scan, scanned: [], scannedChars: 0, sse: undefined, pending: undefined });
        x.wantResponseBody();
        if (restore) {
          x.willEditResponseEvents();
          // A compressed answer could not be restored: ask the provider for plain text.
          out.removeHeader('accept-encoding');
        }
      }
    }

    function observeText(st: RestoreState): ((text: string) => void) | undefined {
      if (!st.scan) return undefined;
      return (text) => {
        if (st.scannedChars >= maxScannedChars) return;
        st.scanned.push(text);
        st.scannedChars += text.length;
      };
    }

    /** Counts what the model produced itself (`scanResponses`), once the answer is complete. */
    function reportScan(x: Exchange, out: PhaseOutput, st: RestoreState): void {
      if (!st.scan) return;
      const counts = countsOf(st.session.countEntities(st.scanned.join('')));
      st.scanned = [];
      x.set(piiResponseCounts, counts);
      if (Object.keys(counts).length === 0) return;
      out.setMetadata('ai_gateway', 'pii_response_entities', counts);
      if (x.logs('info')) x.log.info('pii entities in answer', { entities: countsText(counts) });
    }

    function responseBody(x: Exchange, out: PhaseOutput, chunk: BodyChunk): void {
      const st = x.get(restoreState);
      if (st === undefined) return;
      const status = x.responseStatus ?? 200;
      if (x.responseIsEventStream) {
        const sse = (st.sse ??= new SseRestore(st.session, st.dialect, observeText(st)));
        if (st.restore) {
          x.editResponseEvents(chunk, (events) => sse.rewrite(events, chunk.endOfStream));
        } else if (st.scan) {
          // Scan only: feed the texts without changing the events (SseRestore over an empty table is a pass-through).
          sse.rewrite(x.responseEvents(chunk), chunk.endOfStream);
        }
        if (chunk.endOfStream) reportScan(x, out, st);
        return;
      }
      if (status >= 300) return; // provider errors pass through as they are
      if (!chunk.endOfStream) {
        // A JSON answer in pieces (not Envoy's BUFFERED mode): hold it, answer once whole.
        (st.pending ??= []).push(Buffer.from(chunk.bytes));
        out.replaceBody(Buffer.alloc(0));
        return;
      }
      const whole = st.pending === undefined ? chunk.bytes : Buffer.concat([...st.pending, chunk.bytes]);
      const inPieces = st.pending !== undefined;
      st.pending = undefined;
      let answer: unknown;
      try {
        answer = JSON.parse(Buffer.from(whole.buffer, whole.byteOffset, whole.byteLength).toString('utf8'));
      } catch {
        answer = undefined; // not JSON: passed through as it came
      }
      const changed = st.restore ? restoreJsonAnswer(st.session, st.dialect, answer, observeText(st)) : (restoreJsonAnswer(st.session, st.dialect, structuredCopy(answer), observeText(st)), false);
      reportScan(x, out, st);
      if (!changed) {
        if (inPieces) out.replaceBody(Buffer.from(whole));
        return;
      }
      const bytes = Buffer.from(JSON.stringify(answer));
      out.replaceBody(bytes);
      // A BUFFERED body answer may carry header mutations, applied before Envoy checks the length.
      if (!inPieces) out.setHeader('content-length', String(bytes.length));
    }

    const guard =
      <A extends unknown[]>(phase: string, fn: (...args: A) => void | Promise<void>) =>
      (...args: A): void | Promise<void> => {
        const wrap = (err: unknown): never => {
          if (err instanceof GatewayError) throw err;
          throw new PiiStageError(phase, err);
        };
        try {
          const r = fn(...args);
          return r instanceof Promise ? r.catch(wrap) : r;
        } catch (err) {
          return wrap(err);
        }
      };

    return {
      name: 'pii',
      failure: options.failure,
      responseBodyUse: 'on-demand',
      rewritesEvents: true,
      requestBody: guard('detection', requestBody),
      responseBody: guard('restore', responseBody),
    };
  },
};

/** A copy for scan-only reading, so observing never changes the answer that passes through. */
function structuredCopy(v: unknown): unknown {
  return v === undefined ? undefined : structuredClone(v);
}
