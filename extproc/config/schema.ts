/**
 * @module config/schema
 * The gateway's configuration: one YAML file, validated as a whole at start and on every reload.
 *
 * Every key is checked (unknown keys are errors, so a typo never silently falls back to a
 * default) and cross-references are resolved here (a route naming a model that does not exist
 * fails the load), so the running server only ever sees a config it can serve.
 */
import { z } from 'zod';
import { adminOptionsSchema } from '../admin/options.js';

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

/** Default API host per provider wire schema (the chain clusters' endpoints). */
export const defaultProviderHosts: Record<(typeof providerApis)[number], string> = {
  openai: 'api.openai.com',
  anthropic: 'api.anthropic.com',
  mistral: 'api.mistral.ai',
};

const providerSchema = z
  .object({
    /** Wire schema of the provider's API. */
    api: z.enum(providerApis),
    /** Envoy cluster that reaches the provider alone (envoy/envoy.yaml, pinned routes). */
    cluster: z.string().min(1),
    /** Credential sent upstream; use ${ENV} so the file holds no secret. */
    apiKey: z.string().optional(),
    /** API host the chain clusters connect to (TLS, SNI = host). Default by `api`: api.openai.com, api.anthropic.com, api.mistral.ai. */
    host: z
      .string()
      .regex(/^[A-Za-z0-9.-]+$/, 'expected a DNS name')
      .optional(),
    /** API port (default 443). */
    port: z.number().int().min(1).max(65535).optional(),
  })
  .strict();

/** Coarse price classes a route can match on (`match.costTier`). */
export const costTiers = ['cheap', 'standard', 'premium'] as const;

const modelSchema = z
  .object({
    /** Key of `providers`. */
    provider: z.string().min(1),
    /** Model name the provider expects, when it differs from the gateway's name. */
    upstreamName: z.string().min(1).optional(),
    /**
     * Other names clients may use (`fast`, `cheap`, `smart`). An alias names exactly one model
     * and is never itself a model name, so resolution is one step and cannot loop.
     */
    aliases: z.array(z.string().min(1)).default([]),
    /** Largest prompt + completion in tokens; a request that cannot fit skips the model. Unset: no limit known. */
    contextWindow: z.number().int().positive().optional(),
    /** What the model supports; a request needing a capability marked `false` skips it. Unset: assumed supported. */
    capabilities: z
      .object({ tools: z.boolean().optional(), vision: z.boolean().optional(), json: z.boolean().optional() })
      .strict()
      .default({}),
    costTier: z.enum(costTiers).optional(),
    /** USD per million tokens, for cost accounting and budgets. */
    pricing: z
      .object({
        inputPerMTok: z.number().nonnegative(),
        outputPerMTok: z.number().nonnegative(),
        cachedInputPerMTok: z.number().nonnegative().optional(),
        cacheWritePerMTok: z.number().nonnegative().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** One name or a list of names, always read as a list. */
const nameList = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .transform((v) => (typeof v === 'string' ? [v] : v));

/**
 * Failures that move a request to the chain's next step (Envoy retries): status codes, and
 * `connect-failure`, `reset` (incl. refused stream) and `per-try-timeout` (needs `perTryTimeoutMs`).
 */
export const retryTriggers = ['connect-failure', 'reset', 'per-try-timeout'] as const;
/** 4xx codes that may fall over; any other 4xx is caused by the request itself. */
const retriable4xx = new Set([408, 409, 429]);

const routeMatchSchema = z
  .object({
    /** Caller ids (exact, or globs with `*`). */
    caller: nameList.optional(),
    /** Models or aliases named by the `x-model-preference` header. */
    preference: nameList.optional(),
    /** Models or aliases named by the body's `model`. */
    model: nameList.optional(),
    /** Cost tier of the model the client asked for (preference header, else body `model`). */
    costTier: z
      .union([z.enum(costTiers), z.array(z.enum(costTiers)).min(1)])
      .transform((v) => (typeof v === 'string' ? [v] : v))
      .optional(),
    /** Estimated request complexity in [0, 1] (routing/complexity.ts), bounds inclusive. */
    complexity: z
      .object({ min: z.number().min(0).max(1).optional(), max: z.number().min(0).max(1).optional() })
      .strict()
      .optional(),
    /** The request carries `x-max-latency-ms` and the chain's first step's observed latency is within it. */
    withinLatency: z.literal(true).optional(),
    /** The caller's budget is used above this fraction (0..1). */
    budgetUsedAbove: z.number().min(0).max(1).optional(),
  })
  .strict();

const routeSchema = z
  .object({
    /** Route name (response header `x-gateway-route`, Envoy cluster names). Default `route-<index>`. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'letters, digits, "-" and "_", at most 63')
      .optional(),
    /** Which requests the route takes; omitted or empty: every request (a default). */
    match: routeMatchSchema.default({}),
    /** First step of the chain (a model or an alias). */
    model: z.string().min(1),
    /** Models tried in order when the one before fails (Envoy retries across priorities). */
    fallback: z.array(z.string().min(1)).default([]),
    /** What moves a request to the next step. */
    retryOn: z
      .array(z.union([z.number().int().min(400).max(599), z.enum(retryTriggers)]))
      .default([429, 500, 502, 503, 504, 529, 'connect-failure', 'reset']),
    /** Time limit of one attempt (Envoy per-try timeout). */
    perTryTimeoutMs: z.number().int().positive().optional(),
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
    /** The read-only admin page (extproc/admin): off unless enabled; binds to localhost by default. */
    admin: adminOptionsSchema.default(adminOptionsSchema.parse({})),
  })
  .strict()
  .superRefine((config, ctx) => {
    const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
    // Catalog: providers exist; aliases are unambiguous and never shadow a model name.
    const aliasOwner = new Map<string, string>();
    for (const [name, model] of Object.entries(config.models)) {
      if (!(model.provider in config.providers)) issue(['models', name, 'provider'], `unknown provider "${model.provider}"`);
      model.aliases.forEach((alias, j) => {
        const path = ['models', name, 'aliases', j];
        if (alias in config.models) issue(path, `alias "${alias}" is also a model name (an alias must name one model, without loops)`);
        else if (aliasOwner.has(alias) && aliasOwner.get(alias) !== name) issue(path, `alias "${alias}" is already an alias of model "${aliasOwner.get(alias)}"`);
        else if (aliasOwner.has(alias)) issue(path, `alias "${alias}" is listed twice`);
        else aliasOwner.set(alias, name);
      });
    }
    const resolve = (nameOrAlias: string): string | undefined =>
      nameOrAlias in config.models ? nameOrAlias : aliasOwner.get(nameOrAlias);
    // Routes: steps and match names resolve, names are unique, a default ends the list.
    const routeNames = new Map<string, number>();
    config.routes.forEach((route, i) => {
      const name = route.name ?? `route-${i}`;
      if (routeNames.has(name)) issue(['routes', i, 'name'], `route name "${name}" is already used by routes[${routeNames.get(name)}]`);
      else routeNames.set(name, i);
      const seen = new Set<string>();
      const step = (model: string, path: (string | number)[]): void => {
        const resolved = resolve(model);
        if (resolved === undefined) issue(path, `unknown model "${model}"`);
        else if (seen.has(resolved)) issue(path, `model "${resolved}" is already a step of this chain`);
        else seen.add(resolved);
      };
      step(route.model, ['routes', i, 'model']);
      route.fallback.forEach((m, j) => step(m, ['routes', i, 'fallback', j]));
      for (const key of ['model', 'preference'] as const) {
        route.match[key]?.forEach((m, j) => {
          if (resolve(m) === undefined) issue(['routes', i, 'match', key, j], `unknown model "${m}"`);
        });
      }
      const c = route.match.complexity;
      if (c?.min !== undefined && c.max !== undefined && c.min > c.max) issue(['routes', i, 'match', 'complexity'], 'min is above max');
      route.retryOn.forEach((t, j) => {
        if (typeof t === 'number' && t < 500 && !retriable4xx.has(t)) {
          issue(['routes', i, 'retryOn', j], `${t} is caused by the request itself and never falls over (4xx allowed: 408, 409, 429)`);
        }
        if (t === 'per-try-timeout' && route.perTryTimeoutMs === undefined) issue(['routes', i, 'retryOn', j], 'per-try-timeout needs perTryTimeoutMs');
      });
    });
    const last = config.routes.length - 1;
    if (last >= 0 && Object.keys(config.routes[last]!.match).length > 0) {
      issue(['routes', last, 'match'], 'the last route must be a default (no match): a request no rule takes needs a route');
    }
  });

/** A validated configuration (what the server runs on). */
export type GatewayConfig = z.output<typeof configSchema>;
/** One stage entry as written in the file. */
export type StageEntry = z.output<typeof stageEntrySchema>;
