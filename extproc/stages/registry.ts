/**
 * @module stages/registry
 * Stage names usable in `pipeline.stages`, and how a config's stage list becomes a Pipeline.
 */
import type { GatewayConfig, StageEntry } from '../config/schema.js';
import type { ConfigCheck } from '../config/load.js';
import { formatPath } from '../config/path.js';
import { Pipeline } from '../pipeline/pipeline.js';
import type { FilterRole, StageDeps, StageFactory } from '../pipeline/stage.js';
import { parseRequestStage } from './parseRequest.js';

/** Stage name → factory. */
export type StageRegistry = ReadonlyMap<string, StageFactory<never>>;

/** The stages the gateway ships. */
export const builtinStages: StageRegistry = new Map<string, StageFactory<never>>([[parseRequestStage.name, parseRequestStage as StageFactory<never>]]);

/** A registry with extra stages (e.g. a test's), which may not shadow built-in names. */
export function extendRegistry(base: StageRegistry, extra: readonly StageFactory<never>[]): StageRegistry {
  const map = new Map(base);
  for (const f of extra) {
    if (map.has(f.name)) throw new Error(`stage "${f.name}" is already registered`);
    map.set(f.name, f);
  }
  return map;
}

function entryParts(entry: StageEntry): { name: string; options: Record<string, unknown> } {
  if (typeof entry === 'string') return { name: entry, options: {} };
  const { name, ...options } = entry;
  return { name, options };
}

/** Resolves each entry to its factory and validated options, or lists the problems by key. */
function resolve(config: GatewayConfig, registry: StageRegistry): { factory: StageFactory<never>; options: unknown }[] | string[] {
  const problems: string[] = [];
  const resolved: { factory: StageFactory<never>; options: unknown }[] = [];
  config.pipeline.stages.forEach((entry, i) => {
    const { name, options } = entryParts(entry);
    const path = ['pipeline', 'stages', i];
    const factory = registry.get(name);
    if (!factory) {
      problems.push(`${formatPath(path)}: unknown stage "${name}" (known: ${[...registry.keys()].join(', ')})`);
      return;
    }
    if (!factory.options) {
      const extra = Object.keys(options);
      if (extra.length > 0) problems.push(`${formatPath([...path, extra[0]!])}: stage "${name}" takes no options`);
      resolved.push({ factory, options: undefined });
      return;
    }
    const result = factory.options.safeParse(options);
    if (!result.success) {
      for (const issue of result.error.issues) problems.push(`${formatPath([...path, ...issue.path])}: ${issue.message}`);
      return;
    }
    resolved.push({ factory, options: result.data });
  });
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

/** Builds the pipelines for a (validated) config: each stage joins the filter it runs on. */
export function buildPipelines(config: GatewayConfig, registry: StageRegistry, deps: StageDeps): Pipelines {
  const r = resolve(config, registry);
  if (r.length > 0 && typeof r[0] === 'string') throw new Error((r as string[]).join('\n'));
  const stages = (r as { factory: StageFactory<never>; options: unknown }[]).map(({ factory, options }) => factory.create(options as never, deps));
  const { onInvalidRequest, streamObserver } = config.pipeline;
  return {
    router: new Pipeline(stages.filter((s) => (s.filter ?? 'router') === 'router'), onInvalidRequest, streamObserver),
    attempt: new Pipeline(stages.filter((s) => s.filter === 'attempt'), onInvalidRequest, false),
  };
}
