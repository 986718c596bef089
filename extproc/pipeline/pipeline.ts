/**
 * @module pipeline/pipeline
 * Runs the configured stages for each phase, in order, and knows from their handlers which
 * phases Envoy must send at all. A stage's `out.respond` ends the phase; a thrown error follows
 * the stage's failure policy, and an unreadable request follows `pipeline.onInvalidRequest`.
 */
import { GatewayError, errorReply } from '../errors.js';
import { describeError } from '../telemetry/logger.js';
import type { Exchange } from './exchange.js';
import { PhaseOutput } from './output.js';
import type { BodyChunk, Phase } from './phases.js';
import type { Stage, StepResult } from './stage.js';

/** How a phase's handler is called. */
type Handler = (stage: Stage, x: Exchange, out: PhaseOutput, chunk: BodyChunk | undefined) => StepResult;

const handlers: Record<Phase, Handler> = {
  requestHeaders: (s, x, out) => s.requestHeaders?.(x, out),
  requestBody: (s, x, out, chunk) => s.requestBody?.(x, out, chunk!),
  responseHeaders: (s, x, out) => s.responseHeaders?.(x, out),
  responseBody: (s, x, out, chunk) => s.responseBody?.(x, out, chunk!),
};

/** Which phases the configured stages read; the adapter turns this into processing modes. */
export interface PipelineNeeds {
  requestBody: boolean;
  responseHeaders: boolean;
  /** `never`: no stage reads response bodies; `always`; or only when an exchange asks. */
  responseBody: 'never' | 'always' | 'on-demand';
}

/** Codes that mean "the gateway cannot read this request", as opposed to a stage failing. */
const UNREADABLE = new Set(['INVALID_REQUEST', 'UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE']);

/** The ordered stages of one config generation. Immutable: a reload builds a new one. */
export class Pipeline {
  readonly needs: PipelineNeeds;
  private readonly byPhase: Record<Phase, Stage[]>;
  /** Response-body observers fed by the observability stream (empty unless `streamObserver`). */
  private readonly observers: Stage[];
  /** Stages with a `finish` hook. */
  private readonly finishers: Stage[];

  constructor(
    readonly stages: readonly Stage[],
    private readonly onInvalidRequest: 'continue' | 'reject',
    streamObserver = false,
  ) {
    const observes = (s: Stage): boolean => streamObserver && s.responseBodyAccess === 'observe';
    this.observers = stages.filter((s) => s.responseBody && observes(s));
    this.finishers = stages.filter((s) => s.finish);
    this.byPhase = {
      requestHeaders: stages.filter((s) => s.requestHeaders),
      requestBody: stages.filter((s) => s.requestBody),
      responseHeaders: stages.filter((s) => s.responseHeaders),
      responseBody: stages.filter((s) => s.responseBody && !observes(s)),
    };
    const bodyReaders = this.byPhase.responseBody;
    const responseBody = bodyReaders.length === 0 ? 'never' : bodyReaders.some((s) => (s.responseBodyUse ?? 'always') === 'always') ? 'always' : 'on-demand';
    this.needs = {
      requestBody: this.byPhase.requestBody.length > 0,
      // Response headers tell JSON from SSE, which decides the response body mode.
      responseHeaders: this.byPhase.responseHeaders.length > 0 || responseBody !== 'never',
      responseBody,
    };
  }

  /** True when some stage runs in `phase`. */
  has(phase: Phase): boolean {
    return this.byPhase[phase].length > 0;
  }

  /**
   * Runs the stages of `phase`. Returns synchronously when every stage did (the common case
   * for cheap stages), so the adapter can answer without a promise turn.
   */
  run(phase: Phase, x: Exchange, chunk?: BodyChunk): PhaseOutput | Promise<PhaseOutput> {
    const out = new PhaseOutput();
    if (x.uninspectable !== undefined && (phase === 'requestHeaders' || phase === 'requestBody')) return out;
    return this.runFrom(this.byPhase[phase], 0, x, out, handlers[phase], chunk);
  }

  private runFrom(
    stages: Stage[],
    start: number,
    x: Exchange,
    out: PhaseOutput,
    handler: Handler,
    chunk: BodyChunk | undefined,
  ): PhaseOutput | Promise<PhaseOutput> {
    for (let i = start; i < stages.length; i++) {
      const stage = stages[i]!;
      let result: StepResult;
      try {
        result = handler(stage, x, out, chunk);
      } catch (err) {
        if (this.fail(stage, x, out, err)) return out;
        continue;
      }
      if (result !== undefined) {
        return result.then(
          () => (out.reply ? out : this.runFrom(stages, i + 1, x, out, handler, chunk)),
          (err: unknown) => (this.fail(stage, x, out, err) ? out : this.runFrom(stages, i + 1, x, out, handler, chunk)),
        );
      }
      if (out.reply) return out;
    }
    return out;
  }

  /** Applies the failure policy; true when the phase must stop (an answer was set). */
  private fail(stage: Stage, x: Exchange, out: PhaseOutput, err: unknown): boolean {
    if (err instanceof GatewayError && UNREADABLE.has(err.code)) {
      x.uninspectable = err.message;
      x.log.warn('request not inspectable', { stage: stage.name, code: err.code, reason: err.message, policy: this.onInvalidRequest });
      if (this.onInvalidRequest === 'reject') {
        out.respond(errorReply(err.code, err.message));
        return true;
      }
      out.reset(); // continue unchanged: drop what earlier stages decided on an unread body
      return true;
    }
    if (stage.failure === 'closed') {
      x.log.error('stage failed; failing closed', { stage: stage.name, error: describeError(err) });
      out.respond(errorReply('STAGE_FAILED', `the gateway could not process the request (${stage.name})`));
      return true;
    }
    x.log.warn('stage failed; failing open', { stage: stage.name, error: describeError(err) });
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
  observe(x: Exchange, chunk: BodyChunk): StepResult {
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

  /** Runs every stage's `finish` hook once the stream is over; errors are logged, never thrown. */
  finish(x: Exchange): void {
    // Most pipelines have no finish hook: no promise per stream for them.
    if (this.finishers.length > 0) void this.runFinishers(x);
  }

  private async runFinishers(x: Exchange): Promise<void> {
    for (const stage of this.finishers) {
      try {
        await stage.finish!(x);
      } catch (err) {
        x.log.error('stage finish failed', { stage: stage.name, error: describeError(err) });
      }
    }
  }
}
