/**
 * @module pipeline/pipeline
 * Runs the configured stages for each phase, in order, and knows from their handlers which
 * phases Envoy must send at all. A stage's `out.respond` / `out.fail` ends the phase; a thrown
 * error or a handler slower than the stage's `timeoutMs` follows the stage's failure policy,
 * and an unreadable request follows `pipeline.onInvalidRequest`. After the last stage of a
 * phase, request edits are serialised once and SSE rewrites re-serialised once.
 */
import { describeError } from '../telemetry/logger.js';
import { GatewayError, UNREADABLE_CODES, type ClientError } from './errors.js';
import type { Exchange, Outcome, StreamExchange } from './exchange.js';
import { PhaseOutput, type ImmediateReply } from './output.js';
import type { BodyChunk, Phase } from './phases.js';
import type { FilterRole, Stage, StepResult } from './stage.js';

/** A stage's handler of one phase, bound to its stage. */
type Hook = (x: Exchange, out: PhaseOutput, chunk: BodyChunk | undefined) => StepResult;

/**
 * The stages of one phase and their handlers, bound once when the pipeline is built: a message
 * then calls each handler directly (no lookup of the phase, or of the handler on stage objects
 * of as many shapes as there are stages, on every message).
 */
interface PhaseStages {
  readonly stages: Stage[];
  readonly hooks: Hook[];
}

function phaseStages(stages: Stage[], hook: (s: Stage) => Hook): PhaseStages {
  return { stages, hooks: stages.map(hook) };
}

/** Which phases the configured stages read; the adapter turns this into processing modes. */
export interface PipelineNeeds {
  requestBody: boolean;
  responseHeaders: boolean;
  /** `never`: no stage reads response bodies; `always`; or only when an exchange asks. */
  responseBody: 'never' | 'always' | 'on-demand';
}

/** Turns a catalogue error into the client's answer (its API's error shape). */
export type ErrorRenderer = (error: ClientError, x: Exchange) => ImmediateReply;

/** How a pipeline behaves beyond its stages. */
export interface PipelineOptions {
  /** What an unreadable request gets: `continue` untouched, or `reject` with 400/413/415. */
  onInvalidRequest: 'continue' | 'reject';
  /** Observe-only response stages read from the observability stream. */
  streamObserver?: boolean;
  /** Renders catalogue errors; the composition root passes the dialect-aware one. */
  renderError: ErrorRenderer;
  /** The filter this pipeline serves. */
  role?: FilterRole;
}

/** Thrown into the failure policy when a handler outlived its stage's `timeoutMs`. */
export class StageTimeoutError extends Error {
  constructor(stage: string, ms: number) {
    super(`stage ${stage} did not answer within ${ms} ms`);
    this.name = 'StageTimeoutError';
  }
}

/** The ordered stages of one config generation. Immutable: a reload builds a new one. */
export class Pipeline {
  readonly needs: PipelineNeeds;
  readonly role: FilterRole;
  private readonly requestHeadersStages: PhaseStages;
  private readonly requestBodyStages: PhaseStages;
  private readonly responseHeadersStages: PhaseStages;
  private readonly responseBodyStages: PhaseStages;
  /** Response-body observers fed by the observability stream (empty unless `streamObserver`). */
  private readonly observers: Stage[];
  /** Stages with a `finish` hook. */
  private readonly finishers: Stage[];
  /** Some response stage rewrites SSE events: chunks are re-serialised from events. */
  private readonly rewritesEvents: boolean;
  private readonly onInvalidRequest: 'continue' | 'reject';
  private readonly renderError: ErrorRenderer;

  constructor(
    readonly stages: readonly Stage[],
    options: PipelineOptions,
  ) {
    this.onInvalidRequest = options.onInvalidRequest;
    this.renderError = options.renderError;
    this.role = options.role ?? 'router';
    const streamObserver = options.streamObserver === true;
    const observes = (s: Stage): boolean => streamObserver && s.responseBodyAccess === 'observe';
    this.observers = stages.filter((s) => s.responseBody && observes(s));
    this.finishers = stages.filter((s) => s.finish);
    this.requestHeadersStages = phaseStages(stages.filter((s) => s.requestHeaders), (s) => s.requestHeaders!.bind(s) as Hook);
    this.requestBodyStages = phaseStages(stages.filter((s) => s.requestBody), (s) => s.requestBody!.bind(s) as Hook);
    this.responseHeadersStages = phaseStages(stages.filter((s) => s.responseHeaders), (s) => s.responseHeaders!.bind(s) as Hook);
    this.responseBodyStages = phaseStages(stages.filter((s) => s.responseBody && !observes(s)), (s) => s.responseBody!.bind(s) as Hook);
    const bodyReaders = this.responseBodyStages.stages;
    this.rewritesEvents = bodyReaders.some((s) => s.rewritesEvents === true);
    const responseBody = bodyReaders.length === 0 ? 'never' : bodyReaders.some((s) => (s.responseBodyUse ?? 'always') === 'always') ? 'always' : 'on-demand';
    this.needs = {
      requestBody: this.requestBodyStages.stages.length > 0,
      // Response headers tell JSON from SSE, which decides the response body mode.
      responseHeaders: this.responseHeadersStages.stages.length > 0 || responseBody !== 'never',
      responseBody,
    };
  }

  /** True when some stage runs in `phase`. */
  has(phase: Phase): boolean {
    return this.of(phase).stages.length > 0;
  }

  /** The stages of `phase` (a switch: one shape per property read, whatever the phase). */
  private of(phase: Phase): PhaseStages {
    switch (phase) {
      case 'requestHeaders':
        return this.requestHeadersStages;
      case 'requestBody':
        return this.requestBodyStages;
      case 'responseHeaders':
        return this.responseHeadersStages;
      case 'responseBody':
        return this.responseBodyStages;
    }
  }

  /** True when some stage has a `finish` hook. */
  get hasFinishers(): boolean {
    return this.finishers.length > 0;
  }

  /**
   * Runs the stages of `phase`. Returns synchronously when every stage did (the common case
   * for cheap stages), so the adapter can answer without a promise turn.
   */
  run(phase: Phase, x: StreamExchange, chunk?: BodyChunk): PhaseOutput | Promise<PhaseOutput> {
    const out = new PhaseOutput();
    if (x.uninspectable !== undefined && (phase === 'requestHeaders' || phase === 'requestBody')) return out;
    if (phase === 'responseBody' && chunk && !chunk.observed) x.responseBodyStarted = true;
    const result = this.runFrom(this.of(phase), 0, x, out, chunk);
    return result instanceof Promise ? result.then((o) => this.complete(phase, x, o, chunk)) : this.complete(phase, x, result, chunk);
  }

  /** After the last stage: render errors, serialise edits once. */
  private complete(phase: Phase, x: StreamExchange, out: PhaseOutput, chunk: BodyChunk | undefined): PhaseOutput {
    if (out.error && !out.reply) out.reply = this.renderError(out.error, x);
    if (out.reply) return out;
    if (phase === 'requestBody' && x.requestEdited && out.body === undefined && x.uninspectable === undefined) {
      const body = x.serializeEditedRequest();
      out.body = body;
      // BUFFERED body answers apply header mutations before Envoy's length check (facts §2.11).
      out.setHeader('content-length', String(body.length));
    } else if (phase === 'responseBody' && this.rewritesEvents && x.editsResponseEvents && chunk && !chunk.observed && out.body === undefined && x.responseIsEventStream) {
      // Re-serialised only on exchanges a stage declared it may rewrite; others pass as bytes.
      out.body = x.serializeEvents(chunk);
    }
    return out;
  }

  private runFrom(phase: PhaseStages, start: number, x: StreamExchange, out: PhaseOutput, chunk: BodyChunk | undefined): PhaseOutput | Promise<PhaseOutput> {
    const hooks = phase.hooks;
    for (let i = start; i < hooks.length; i++) {
      let result: StepResult;
      try {
        result = hooks[i]!(x, out, chunk);
      } catch (err) {
        if (this.fail(phase.stages[i]!, x, out, err)) return out;
        continue;
      }
      if (result !== undefined) return this.awaitStage(phase, i, x, out, chunk, result);
      if (out.answered) return out;
    }
    return out;
  }

  /** Waits for an asynchronous handler, within its stage's time budget. */
  private async awaitStage(phase: PhaseStages, i: number, x: StreamExchange, out: PhaseOutput, chunk: BodyChunk | undefined, result: Promise<void>): Promise<PhaseOutput> {
    const stage = phase.stages[i]!;
    let next = out;
    try {
      if (stage.timeoutMs === undefined) await result;
      else if ((await withTimeout(result, stage.timeoutMs)) === TIMED_OUT) {
        // The handler may still write into `out` when its I/O returns; later stages and the
        // answer continue on a copy so a late write can never change what was decided.
        next = out.clone();
        result.catch((err: unknown) => x.log.debug('late failure of a timed-out stage', { stage: stage.name, error: describeError(err) }));
        if (this.fail(stage, x, next, new StageTimeoutError(stage.name, stage.timeoutMs))) return next;
        return this.runFrom(phase, i + 1, x, next, chunk);
      }
    } catch (err) {
      if (this.fail(stage, x, next, err)) return next;
      return this.runFrom(phase, i + 1, x, next, chunk);
    }
    return next.answered ? next : this.runFrom(phase, i + 1, x, next, chunk);
  }

  /** Applies the failure policy; true when the phase must stop (an answer was set). */
  private fail(stage: Stage, x: StreamExchange, out: PhaseOutput, err: unknown): boolean {
    if (err instanceof GatewayError && UNREADABLE_CODES.has(err.code)) {
      x.uninspectable = err.message;
      x.log.warn('request not inspectable', { stage: stage.name, code: err.code, reason: err.message, policy: this.onInvalidRequest });
      if (this.onInvalidRequest === 'reject') {
        out.fail(err.code, err.message);
        return true;
      }
      out.reset(); // continue unchanged: drop what earlier stages decided on an unread body
      return true;
    }
    const timedOut = err instanceof StageTimeoutError;
    if (stage.failure === 'closed') {
      x.log.error(timedOut ? 'stage timed out; failing closed' : 'stage failed; failing closed', { stage: stage.name, error: describeError(err) });
      out.reset();
      if (timedOut) out.fail('UNAVAILABLE', `the gateway could not process the request in time (${stage.name})`, { details: `gateway_stage_timeout_${stage.name}` });
      else out.fail('STAGE_FAILED', `the gateway could not process the request (${stage.name})`, { details: `gateway_stage_failed_${stage.name}` });
      return true;
    }
    x.log.warn(timedOut ? 'stage timed out; failing open' : 'stage failed; failing open', { stage: stage.name, error: describeError(err) });
    return false;
  }

  /** True when response-body observers read from the observability stream. */
  get hasObservers(): boolean {
    return this.observers.length > 0;
  }

  /**
   * Feeds one chunk of an observability-mode stream to the observers. Nothing can be answered
   * there, so `out` is discarded; errors are logged whatever the stage's policy.
   */
  observe(x: StreamExchange, chunk: BodyChunk): StepResult {
    const out = new PhaseOutput();
    let pending: Promise<void> | undefined;
    for (const stage of this.observers) {
      try {
        const r = stage.responseBody!(x, out, chunk);
        if (r) {
          const settled = r.catch((err: unknown) => this.observerFailed(stage, x, err));
          pending = pending ? Promise.all([pending, settled]).then(() => undefined) : settled;
        }
      } catch (err) {
        this.observerFailed(stage, x, err);
      }
    }
    return pending;
  }

  private observerFailed(stage: Stage, x: Exchange, err: unknown): void {
    x.log.warn('observer failed', { stage: stage.name, error: describeError(err) });
  }

  /**
   * Runs every stage's `finish` hook once the stream is over, concurrently, each with its own
   * error handling. Returns the pending work (undefined when no stage has a hook: no promise
   * per stream for most pipelines) so shutdown can wait for it.
   */
  finish(x: Exchange, outcome: Outcome): Promise<void> | undefined {
    const n = this.finishers.length;
    if (n === 0) return undefined;
    if (n === 1) return this.runFinisher(this.finishers[0]!, x, outcome);
    // A loop and a module function, not closures per stream (server/processStream's HOT_PATH_FUNCTIONS).
    const work = new Array<Promise<void>>(n);
    for (let i = 0; i < n; i++) work[i] = this.runFinisher(this.finishers[i]!, x, outcome);
    return Promise.all(work).then(nothing);
  }

  private async runFinisher(stage: Stage, x: Exchange, outcome: Outcome): Promise<void> {
    try {
      await stage.finish!(x, outcome);
    } catch (err) {
      x.log.error('stage finish failed', { stage: stage.name, error: describeError(err) });
    }
  }
}

const TIMED_OUT = Symbol('timed out');

function nothing(): void {}

/** Resolves with the promise's value, or TIMED_OUT after `ms`; never leaves a timer behind. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), ms)));
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Marks a promise's rejection as handled and returns it, so work started early (a Redis
 * reservation begun at request headers) can be awaited in a later phase, or not at all,
 * without an unhandled rejection killing the process.
 */
export function startEarly<T>(work: Promise<T>): Promise<T> {
  work.catch(() => undefined);
  return work;
}
