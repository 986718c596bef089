/**
 * @module pipeline/stage
 * A stage binds one concern (PII, cache, routing, limits, usage…) to the phases where its data
 * is. Which handlers a stage defines is how it declares the phases it needs: the server asks
 * Envoy (through processing_mode / mode_override) for only what some stage reads, because every
 * message is a synchronous round trip on the request's critical path.
 */
import type { ZodType } from 'zod';
import type { Logger } from '../telemetry/logger.js';
import type { Exchange } from './exchange.js';
import type { PhaseOutput } from './output.js';
import type { BodyChunk } from './phases.js';

/** The ext_proc filter instance a stream comes from (see envoy/envoy.yaml). */
export type FilterRole = 'router' | 'attempt';

/** What a handler returns: nothing, synchronously or once its I/O is done. */
export type StepResult = void | Promise<void>;

/** One step of the pipeline. Handlers write decisions into `out`; `out.respond` answers at once. */
export interface Stage {
  /** Name as written in the config (`pipeline.stages`). */
  readonly name: string;
  /**
   * What an unexpected error in this stage means: `open` logs it and lets the request through
   * untouched by this stage; `closed` answers 500 (e.g. PII redaction must not leak on a bug).
   */
  readonly failure: 'open' | 'closed';
  /**
   * Whether the stage reads response bodies on every exchange (`always`) or only on exchanges
   * where an earlier handler called `exchange.wantResponseBody()` (`on-demand`). Ignored
   * without a `responseBody` handler.
   */
  readonly responseBodyUse?: 'always' | 'on-demand';
  /**
   * `observe`: the `responseBody` handler only reads (token counting, logging) and never
   * mutates. With `pipeline.streamObserver` on, such stages are fed from Envoy's second,
   * observability-mode ext_proc filter (send-and-go), so watching a stream adds no round trip
   * per chunk. Default `mutate`.
   */
  readonly responseBodyAccess?: 'mutate' | 'observe';

  /**
   * Which ext_proc filter the stage runs on: `router` (the HCM filter, once per request; the
   * default) or `attempt` (the upstream filter on a provider cluster, once per upstream try,
   * where per-provider translation and credentials belong).
   */
  readonly filter?: FilterRole;

  /** Request headers (every exchange; Envoy always sends them). */
  requestHeaders?(x: Exchange, out: PhaseOutput): StepResult;
  /** The complete request body, once (Envoy BUFFERED mode). */
  requestBody?(x: Exchange, out: PhaseOutput, body: BodyChunk): StepResult;
  /** Response headers, status in `x.responseStatus`. */
  responseHeaders?(x: Exchange, out: PhaseOutput): StepResult;
  /** Each response body chunk: the whole body when buffered, or one STREAMED chunk of an SSE answer. */
  responseBody?(x: Exchange, out: PhaseOutput, chunk: BodyChunk): StepResult;
  /**
   * Once, after Envoy closed the stream (answer delivered, client gone, or error). Runs off the
   * critical path; where usage records and cache writes happen.
   */
  finish?(x: Exchange): StepResult;
}

/** Shared services a stage may use (grows as domain modules arrive). */
export interface StageDeps {
  readonly log: Logger;
}

/** Builds a stage from its config entry. */
export interface StageFactory<Options = unknown> {
  readonly name: string;
  /** Validates the stage's options (the config entry minus `name`); none means no options. */
  readonly options?: ZodType<Options>;
  create(options: Options, deps: StageDeps): Stage;
}
