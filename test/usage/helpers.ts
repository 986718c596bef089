/** Builds the usage stage for in-process tests, loads the usage example config, and splits bytes at seeded random boundaries. */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { expect } from 'vitest';
import { substituteEnv } from '../../extproc/config/env.js';
import type { Catalog, Stage } from '../../extproc/pipeline/stage.js';
import { ServiceRegistry } from '../../extproc/pipeline/services.js';
import { parseRequestStage } from '../../extproc/stages/parseRequest.js';
import { usageStage } from '../../extproc/stages/usage.js';
import { usageOptionsSchema } from '../../extproc/usage/options.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import type { Pipeline } from '../../extproc/pipeline/pipeline.js';
import { pipelineOf } from '../helpers/harness.js';
import { mulberry32 } from '../helpers/prng.js';

export const testCatalog: Catalog = {
  providers: { openai: {}, anthropic: {}, mistral: {} },
  models: {
    'gpt-4o': { provider: 'openai', pricing: { inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 1.25 } },
    'claude-opus-4': { provider: 'anthropic', upstreamName: 'claude-opus-4-20250514', pricing: { inputPerMTok: 15, outputPerMTok: 75, cachedInputPerMTok: 1.5, cacheWritePerMTok: 18.75 } },
    'mistral-large': { provider: 'mistral', upstreamName: 'mistral-large-latest', pricing: { inputPerMTok: 2, outputPerMTok: 6 } },
  },
  routes: [],
};

/** parse-request + usage (options merged over `ledger: false`), and a close for its services. */
export function usagePipeline(options: Record<string, unknown> = {}, pipelineOptions: { streamObserver?: boolean } = {}): { pipeline: Pipeline; stage: Stage; close(): Promise<void> } {
  const registry = new ServiceRegistry(createLogger('error', () => undefined), 0);
  const gen = registry.generation();
  const log = createLogger('error', () => undefined);
  const parsed = usageOptionsSchema.parse({ ledger: false, ...options });
  const deps = { log, services: gen.services, catalog: testCatalog };
  const stage = usageStage.create(parsed, deps);
  gen.commit();
  const pipeline = pipelineOf([parseRequestStage.create(undefined as never, deps), stage], pipelineOptions);
  return { pipeline, stage, close: () => registry.closeAll() };
}

/** Seeded PRNG (mulberry32, test/helpers/prng.ts). */
export const rng = mulberry32;

/** `bytes` cut at random boundaries (possibly inside an event, a line or a UTF-8 character). */
export function randomSplit(bytes: Buffer, seed: number, maxPiece = 40): Buffer[] {
  const next = rng(seed);
  const out: Buffer[] = [];
  let i = 0;
  while (i < bytes.length) {
    const n = 1 + Math.floor(next() * maxPiece);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

const usageExamplePath = path.join(import.meta.dirname, '../../config/examples/usage.yaml');

/**
 * `config/examples/usage.yaml` for an end-to-end test: its data in `dataDir`, a loopback server,
 * Prometheus on a free loopback port. Returns the config and its `usage` entry, for the test's
 * own adjustments.
 */
export function usageExampleConfig(dataDir: string): { config: Record<string, any>; usage: Record<string, any> } {
  const raw = YAML.parse(fs.readFileSync(usageExamplePath, 'utf8')) as Record<string, unknown>;
  const { value, problems } = substituteEnv(raw, { USAGE_DATA_DIR: dataDir, METRICS_PORT: '0' });
  expect(problems).toEqual([]);
  const config = value as Record<string, any>;
  config['server'] = { host: '127.0.0.1', port: 0, shutdownGraceMs: 5000 };
  const usage = config['pipeline'].stages.find((s: any) => typeof s === 'object' && s.name === 'usage');
  usage.metrics.prometheus.host = '127.0.0.1';
  return { config, usage };
}
