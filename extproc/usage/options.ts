/**
 * @module usage/options
 * Options of the `usage` stage (its `pipeline.stages` entry): where records go (log line,
 * ledger, metrics, traces) and whether the response phases set `ai_gateway` dynamic metadata.
 * Ports accept strings because `${METRICS_PORT:-9464}` substitutes text.
 */
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const positiveMs = z.coerce.number().int().positive();

const storeSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('embedded'),
      /** PGlite data directory (one gateway per directory). */
      dataDir: z.string().min(1).default('./data/usage'),
      poolSize: z.number().int().positive().optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('postgres'),
      /** postgres://… (use ${ENV}: it holds a password). */
      url: z.string().min(1),
      poolSize: z.number().int().positive().optional(),
    })
    .strict(),
]);

const ledgerSchema = z
  .object({
    store: storeSchema.default({ kind: 'embedded', dataDir: './data/usage' }),
    /** Rows per INSERT. */
    batchSize: z.number().int().min(1).max(10_000).default(500),
    /** Longest a record waits before it is written. */
    flushMs: positiveMs.default(1000),
    /** Records held while the store is slow or down; beyond it records are dropped (and logged). */
    maxQueue: z.number().int().min(1).default(100_000),
  })
  .strict();

const metricsSchema = z
  .object({
    prometheus: z
      .object({
        port: port.default(9464),
        host: z.string().min(1).default('0.0.0.0'),
        path: z.string().regex(/^\//, 'must start with /').default('/metrics'),
      })
      .strict()
      .optional(),
    otlp: z
      .object({
        /** OTLP/HTTP metrics endpoint, e.g. http://otel-collector:4318/v1/metrics. */
        url: z.string().url(),
        intervalMs: positiveMs.default(15_000),
        headers: z.record(z.string(), z.string()).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const tracingSchema = z
  .object({
    otlp: z
      .object({
        /** OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces. */
        url: z.string().url(),
        headers: z.record(z.string(), z.string()).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const usageOptionsSchema = z
  .object({
    /** One JSON log line per request. */
    log: z.boolean().default(true),
    /** The Postgres ledger; `false` turns it off. */
    ledger: z.union([z.literal(false), ledgerSchema]).default(ledgerSchema.parse({})),
    metrics: metricsSchema.default({}),
    tracing: tracingSchema.default({}),
    /**
     * Set `ai_gateway` dynamic metadata (tokens, cost, served model, cache status) when the
     * response ends on the main stream, for Envoy's access log and a global rate-limit service.
     * Observer mode has no answer channel: there the metadata is not set.
     */
    metadata: z.boolean().default(true),
    /** Count tokens with the tokenizer when the provider reports none (record marked `estimated`). */
    estimate: z.boolean().default(true),
  })
  .strict();

export type UsageOptions = z.infer<typeof usageOptionsSchema>;
export type LedgerOptions = z.infer<typeof ledgerSchema>;
