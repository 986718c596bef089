/**
 * @module stages/registry
 * Stage names usable in `pipeline.stages`, and how a config's stage list becomes a Pipeline.
 */
import type { GatewayConfig, StageEntry } from '../config/schema.js';
import type { ConfigCheck } from '../config/load.js';
import { formatPath } from '../config/path.js';
import { renderClientError } from '../errors.js';
import { Pipeline, type ErrorRenderer } from '../pipeline/pipeline.js';
import type { Catalog, FilterRole, Stage, StageDeps, StageFactory } from '../pipeline/stage.js';
import { identityStage } from './identity.js';
import { parseRequestStage } from './parseRequest.js';
import { rateLimitStage } from './rateLimit.js';
import { piiStage } from './pii.js';
import { routeStage } from './route.js';
import { translateStage } from './translate.js';
import { usageStage } from './usage.js';
import { semanticCacheStage } from './semanticCache.js';

/** Stage name → factory. */
export type StageRegistry = ReadonlyMap<string, StageFactory<never>>;

/** The stages the gateway ships. */
export const builtinStages: StageRegistry = new Map<string, StageFactory<never>>(
  [parseRequestStage, identityStage, routeStage, translateStage, piiStage, rateLimitStage, usageStage, semanticCacheStage].map((f) => [f.name, f as unknown as StageFactory<never>]),
);

/** A registry with extra stages (e.g. a test's), which may not shadow built-in names. */
export function extendRegistry(base: StageRegistry, extra: readonly StageFactory<never>[]): StageRegistry {
  const map = new Map(base);
  for (const f of extra) {
    if (map.has(f.name)) throw new Error(`stage "${f.name}" is already registered`);
    map.set(f.name, f);
  }
  return map;
}

/** Keys every stage entry accepts, applied by the pipeline rather than by the stage. */
interface CommonStageSettings {
  failure?: 'open' | 'closed';
  timeoutMs?: number;
}

function entryParts(entry: StageEntry): { name: string; options: Record<string, unknown>; common: Record<string, unknown> } {
  if (typeof entry === 'string') return { name: entry, options: {}, common: {} };
  const { name, failure, timeoutMs, ...options } = entry as Record<string, unknown> & { name: string };
  const common: Record<string, unknown> = {};
  if (failure !== undefined) common['failure'] = failure;
  if (timeoutMs !== undefined) common['timeoutMs'] = timeoutMs;
  return { name, options, common };
}

function checkCommon(common: Record<string, unknown>, path: (string | number)[], problems: string[]): CommonStageSettings {
  const out: CommonStageSettings = {};
  const failure = common['failure'];
  if (failure !== undefined) {
    if (failure === 'open' || failure === 'closed') out.failure = failure;
    else problems.push(`${formatPath([...path, 'failure'])}: must be "open" or "closed"`);
  }
  const timeoutMs = common['timeoutMs'];
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs === 'number' && Number.isInteger(timeoutMs) && timeoutMs > 0) out.timeoutMs = timeoutMs;
    else problems.push(`${formatPath([...path, 'timeoutMs'])}: must be a positive whole number of milliseconds`);
  }
  return out;
}

/** A stage entry resolved to its factory, its validated options and the common settings. */
interface Resolved {
  factory: StageFactory<never>;
  options: unknown;
  common: CommonStageSettings;
}

/** The catalog part of a config, as stages see it. */
export function catalogOf(config: GatewayConfig): Catalog {
  return { providers: config.providers, models: config.models, routes: config.routes };
}

/**
 * Slot ownership: one writer per slot, and a stage that reads a slot comes after its writer.
 * Both stage names are in every message, so the operator sees which two entries clash.
 */
function checkSlots(resolved: { name: string; index: number; factory: StageFactory<never> }[], problems: string[]): void {
  const writers = new Map<unknown, { name: string; index: number }>();
  for (const r of resolved) {
    for (const slot of r.factory.writes ?? []) {
      const first = writers.get(slot);
      if (first) problems.push(`${formatPath(['pipeline', 'stages', r.index])}: stage "${r.name}" writes slot "${slot.name}", which stage "${first.name}" (pipeline.stages[${first.index}]) already writes`);
      else writers.set(slot, { name: r.name, index: r.index });
    }
  }
  for (const r of resolved) {
    for (const slot of r.factory.reads ?? []) {
      const writer = writers.get(slot);
      if (!writer) problems.push(`${formatPath(['pipeline', 'stages', r.index])}: stage "${r.name}" needs slot "${slot.name}", which no configured stage writes`);
      else if (writer.index > r.index) problems.push(`${formatPath(['pipeline', 'stages', r.index])}: stage "${r.name}" reads slot "${slot.name}" written by stage "${writer.name}", which must come before it (it is pipeline.stages[${writer.index}])`);
    }
  }
}

/** Resolves each entry to its factory and validated options, or lists the problems by key. */
function resolve(config: GatewayConfig, registry: StageRegistry): Resolved[] | string[] {
  const problems: string[] = [];
  const resolved: Resolved[] = [];
  const forSlots: { name: string; index: number; factory: StageFactory<never> }[] = [];
  const catalog = catalogOf(config);
  config.pipeline.stages.forEach((entry, i) => {
    const { name, options, common: rawCommon } = entryParts(entry);
    const path = ['pipeline', 'stages', i];
    const common = checkCommon(rawCommon, path, problems);
    const factory = registry.get(name);
    if (!factory) {
      problems.push(`${formatPath(path)}: unknown stage "${name}" (known: ${[...registry.keys()].join(', ')})`);
      return;
    }
    // A stage listed twice is reported as such below, not also as a slot clash with itself.
    if (!forSlots.some((f) => f.name === name)) forSlots.push({ name, index: i, factory });
    if (!factory.options) {
      const extra = Object.keys(options);
      if (extra.length > 0) problems.push(`${formatPath([...path, extra[0]!])}: stage "${name}" takes no options`);
      resolved.push({ factory, options: undefined, common });
      return;
    }
    const result = factory.options.safeParse(options);
    if (!result.success) {
      for (const issue of result.error.issues) problems.push(`${formatPath([...path, ...(issue.path as (string | number)[])])}: ${issue.message}`);
      return;
    }
    for (const p of factory.check?.(result.data as never, catalog) ?? []) problems.push(`${formatPath([...path, ...p.path])}: ${p.message}`);
    resolved.push({ factory, options: result.data, common });
  });
  checkSlots(forSlots, problems);
  const names = config.pipeline.stages.map((e) => entryParts(e).name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) problems.push(`${formatPath(['pipeline', 'stages', i])}: stage "${n}" is listed twice`);
  });
  return problems.length > 0 ? problems : resolved;
}

/** A config check that every stage exists and its options are valid. */
export function stageCheck(registry: StageRegistry): ConfigCheck {
  return (config) => {
    const r = resolve(config, registry);
    return typeof r[0] === 'string' ? (r as string[]) : [];
  };
}

/** The pipelines of one config generation, one per ext_proc filter role. */
export type Pipelines = Readonly<Record<FilterRole, Pipeline>>;

/** Applies the entry's common settings over what the stage declared. */
function withCommon(stage: Stage, common: CommonStageSettings): Stage {
  if (common.failure === undefined && common.timeoutMs === undefined) return stage;
  // Keep the stage's own methods (a class instance's prototype) and override two fields.
  return Object.create(stage, {
    ...(common.failure !== undefined ? { failure: { value: common.failure } } : {}),
    ...(common.timeoutMs !== undefined ? { timeoutMs: { value: common.timeoutMs } } : {}),
  }) as Stage;
}

/**
 * Builds the pipelines for a (validated) config: each stage joins the filter it runs on.
 * `deps.catalog` is filled from the config.
 */
export function buildPipelines(
  config: GatewayConfig,
  registry: StageRegistry,
  deps: Omit<StageDeps, 'catalog'>,
  renderError: ErrorRenderer = renderClientError,
): Pipelines {
  const r = resolve(config, registry);
  if (r.length > 0 && typeof r[0] === 'string') throw new Error((r as string[]).join('\n'));
  const full: StageDeps = { ...deps, catalog: catalogOf(config), config };
  const stages = (r as Resolved[]).map(({ factory, options, common }) => withCommon(factory.create(options as never, full), common));
  const { onInvalidRequest, streamObserver } = config.pipeline;
  return {
    router: new Pipeline(stages.filter((s) => (s.filter ?? 'router') === 'router'), { onInvalidRequest, streamObserver, renderError, role: 'router' }),
    attempt: new Pipeline(stages.filter((s) => s.filter === 'attempt'), { onInvalidRequest, streamObserver: false, renderError, role: 'attempt' }),
  };
}
