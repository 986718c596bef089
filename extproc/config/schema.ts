/**
 * @module config/schema
 * The gateway's configuration: one YAML file, validated as a whole at start and on every reload.
 *
 * Every key is checked (unknown keys are errors, so a typo never silently falls back to a
 * default) and cross-references are resolved here (a route naming a model that does not exist
 * fails the load), so the running server only ever sees a config it can serve.
 */
import { z } from 'zod';

/** Provider wire schemas the gateway can speak. */
export const providerApis = ['openai', 'anthropic', 'mistral'] as const;

const durationMs = z.number().int().nonnegative();

const serverSchema = z
  .object({
    /** Interface the gRPC server binds. */
    host: z.string().min(1).default('0.0.0.0'),
    /** gRPC port (0 picks a free port, for tests). */
    port: z.number().int().min(0).max(65535).default(50051),
    /**
     * Largest ProcessingRequest accepted. Envoy's BUFFERED bodies are bounded by its buffer
     * limit (envoy.yaml raises it to 50 MiB); grpc-js would refuse anything over 4 MiB by default
     * and Envoy would turn that into a 500 (envoy-ext-proc-facts.md §2.12).
     */
    maxMessageBytes: z.number().int().min(4 * 1024 * 1024).default(64 * 1024 * 1024),
    /** How long SIGTERM waits for streams in flight before cancelling them. */
    shutdownGraceMs: durationMs.default(25_000),
    /** Server-side keepalive pings to detect a vanished Envoy (Envoy's own pings are always accepted). */
    keepaliveTimeMs: z.number().int().min(1000).default(60_000),
    keepaliveTimeoutMs: z.number().int().min(100).default(20_000),
  })
  .strict();

const loggingSchema = z
  .object({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  })
  .strict();

/** A stage entry: a bare name, or a name with stage-specific options (validated by the stage). */
const stageEntrySchema = z.union([
  z.string().min(1),
  z.object({ name: z.string().min(1) }).catchall(z.unknown()),
]);

const pipelineSchema = z
  .object({
    /**
     * What to do with a request the gateway cannot read (body not JSON, not UTF-8, unexpected
     * content type): `continue` passes it through untouched, `reject` answers 400 at once.
     */
    onInvalidRequest: z.enum(['continue', 'reject']).default('continue'),
    /**
     * Largest request body the gateway parses. JSON.parse blocks the event loop (~2 ms per MiB
     * here), so bigger bodies are treated as unreadable (`onInvalidRequest` decides).
     */
    maxInspectBytes: z.number().int().positive().default(8 * 1024 * 1024),
    /**
     * Envoy runs a second ext_proc filter with `observability_mode: true` after this one (as
     * envoy/envoy.yaml does): stages that only observe response bodies read them from that
     * send-and-go stream instead of adding a round trip per chunk to the main one.
     */
    streamObserver: z.boolean().default(false),
    /**
     * How long an exchange waits, after its main stream closed, for the observability stream
     * (which Envoy opens only once the main filter let the request go on).
     */
    observerLingerMs: durationMs.default(2000),
    /** Stages in the order they run. None: the server is a transparent pass-through. */
    stages: z.array(stageEntrySchema).default([]),
  })
  .strict();

const providerSchema = z
  .object({
    /** Wire schema of the provider's API. */
    api: z.enum(providerApis),
    /** Envoy cluster that reaches the provider (envoy/envoy.yaml). */
    cluster: z.string().min(1),
    /** Credential sent upstream; use ${ENV} so the file holds no secret. */
    apiKey: z.string().optional(),
  })
  .strict();

const modelSchema = z
  .object({
    /** Key of `providers`. */
    provider: z.string().min(1),
    /** Model name the provider expects, when it differs from the gateway's name. */
    upstreamName: z.string().min(1).optional(),
    /** USD per million tokens, for cost accounting and budgets. */
    pricing: z
      .object({ inputPerMTok: z.number().nonnegative(), outputPerMTok: z.number().nonnegative() })
      .strict()
      .optional(),
  })
  .strict();

const routeSchema = z
  .object({
    name: z.string().min(1).optional(),
    /** Which requests the route takes: by the model asked for, or all when omitted. */
    match: z.object({ model: z.string().min(1).optional() }).strict().default({}),
    /** Model that serves the route. */
    model: z.string().min(1),
    /** Models tried in order when the one before fails (Envoy retries across priorities). */
    fallback: z.array(z.string().min(1)).default([]),
  })
  .strict();

/** Root of the configuration file. */
export const configSchema = z
  .object({
    server: serverSchema.default(serverSchema.parse({})),
    logging: loggingSchema.default(loggingSchema.parse({})),
    pipeline: pipelineSchema.default(pipelineSchema.parse({})),
    providers: z.record(z.string(), providerSchema).default({}),
    models: z.record(z.string(), modelSchema).default({}),
    routes: z.array(routeSchema).default([]),
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const [name, model] of Object.entries(config.models)) {
      if (!(model.provider in config.providers)) {
        ctx.addIssue({ code: 'custom', path: ['models', name, 'provider'], message: `unknown provider "${model.provider}"` });
      }
    }
    config.routes.forEach((route, i) => {
      const check = (model: string, path: (string | number)[]): void => {
        if (!(model in config.models)) ctx.addIssue({ code: 'custom', path, message: `unknown model "${model}"` });
      };
      check(route.model, ['routes', i, 'model']);
      route.fallback.forEach((m, j) => check(m, ['routes', i, 'fallback', j]));
    });
  });

/** A validated configuration (what the server runs on). */
export type GatewayConfig = z.output<typeof configSchema>;
/** One stage entry as written in the file. */
export type StageEntry = z.output<typeof stageEntrySchema>;
