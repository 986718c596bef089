/**
 * @module pipeline/stage
 * A stage binds one concern (PII, cache, routing, limits, usage…) to the phases where its data
 * is. Which handlers a stage defines is how it declares the phases it needs: the server asks
 * Envoy (through processing_mode / mode_override) for only what some stage reads, because every
 * message is a synchronous round trip on the request's critical path.
 */
import type { ZodType } from 'zod';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../telemetry/logger.js';
import type { Exchange, Outcome, Slot } from './exchange.js';
import type { PhaseOutput } from './output.js';
import type { BodyChunk } from './phases.js';
import type { Services } from './services.js';

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

  /**
   * Longest a handler may take (ms) before the pipeline stops waiting for it and applies the
   * failure policy: `open` goes on without the stage's decisions for that message, `closed`
   * answers 503. Without it a hung stage would turn into Envoy's `message_timeout` 504, so an
   * `open` stage doing I/O should always set one. Config may override it per stage entry.
   */
  readonly timeoutMs?: number;

  /**
   * The stage rewrites SSE events (`x.editResponseEvents`). On the exchanges it declares with
   * `x.willEditResponseEvents()` (before the response body) every SSE chunk is re-serialised
   * from the parsed events, so an edit never meets half an event that already passed through
   * as raw bytes; every other exchange's chunks pass as bytes.
   */
  readonly rewritesEvents?: boolean;

  /** Request headers (every exchange; Envoy always sends them). */
  requestHeaders?(x: Exchange, out: PhaseOutput): StepResult;
  /** The complete request body, once (Envoy BUFFERED mode). */
  requestBody?(x: Exchange, out: PhaseOutput, body: BodyChunk): StepResult;
  /** Response headers, status in `x.responseStatus`. */
  responseHeaders?(x: Exchange, out: PhaseOutput): StepResult;
  /** Each response body chunk: the whole body when buffered, or one STREAMED chunk of an SSE answer. */
  responseBody?(x: Exchange, out: PhaseOutput, chunk: BodyChunk): StepResult;
  /**
   * Once, after the stream is over, with how it ended (`outcome`). Runs off the critical path,
   * concurrently with other stages' hooks; where usage records, limit settlements and cache
   * writes happen. Graceful shutdown waits for pending hooks within its grace period.
   */
  finish?(x: Exchange, outcome: Outcome): StepResult;
}

/** The model catalog of the config in force (providers, models, routes), read-only. */
export interface Catalog {
  readonly providers: Readonly<Record<string, unknown>>;
  readonly models: Readonly<Record<string, unknown>>;
  readonly routes: readonly unknown[];
}

/** What a stage factory receives besides its options. */
export interface StageDeps {
  readonly log: Logger;
  /** Shared services (stores, clients, tokenizers) that outlive config reloads. */
  readonly services: Services;
  /** The validated catalog (the config's `providers`, `models`, `routes`). */
  readonly catalog: Catalog;
  /**
   * The whole validated config of this generation, for stages that work together (the attempt
   * stage shares the route stage's cooldown settings). Absent when a test builds a stage alone.
   */
  readonly config?: GatewayConfig;
}

/** Builds a stage from its config entry. */
export interface StageFactory<Options = unknown> {
  readonly name: string;
  /** Validates the stage's options (the config entry minus `name`); none means no options. */
  readonly options?: ZodType<Options>;
  /**
   * Slots the stage writes. A slot has one writer: a second stage declaring the same slot is a
   * config error naming both.
   */
  readonly writes?: readonly Slot<unknown>[];
  /**
   * Slots the stage cannot work without: their writer must be configured before it (a config
   * error names both stages otherwise).
   */
  readonly reads?: readonly Slot<unknown>[];
  /**
   * Cross-checks the options against the rest of the config (e.g. model names against the
   * catalog); returns problems as `key: message` relative to the stage entry.
   */
  check?(options: Options, catalog: Catalog): { path: (string | number)[]; message: string }[];
  create(options: Options, deps: StageDeps): Stage;
}
