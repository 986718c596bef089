/** Starts a gateway on a free loopback port for a test, with log lines captured. */
import { startGateway, type Gateway } from '../../extproc/app.js';
import { parseConfig } from '../../extproc/config/load.js';
import type { Stage, StageFactory } from '../../extproc/pipeline/stage.js';
import { builtinStages, extendRegistry, stageCheck } from '../../extproc/stages/registry.js';
import { recordLogLine } from './logAudit.js';

/** A gateway for tests plus the JSON log lines it wrote. */
export interface TestGateway extends Gateway {
  readonly logs: Record<string, unknown>[];
}

/** `config` is merged over a loopback server section; `stages` adds test-only stage factories. */
export async function startTestGateway(config: Record<string, unknown> = {}, stages: StageFactory<never>[] = [], configPath?: string): Promise<TestGateway> {
  const registry = extendRegistry(builtinStages, stages);
  const server = { host: '127.0.0.1', port: 0, shutdownGraceMs: 2000, ...((config['server'] as object) ?? {}) };
  const parsed = parseConfig({ ...config, server, logging: { level: 'debug', ...((config['logging'] as object) ?? {}) } }, [stageCheck(registry)]);
  const logs: Record<string, unknown>[] = [];
  const gw = await startGateway({ config: parsed, registry, logSink: (line) => {
      recordLogLine(line); // audited for leaks over the whole run (test/helpers/logAudit.ts)
      logs.push(JSON.parse(line) as Record<string, unknown>);
    }, ...(configPath ? { configPath } : {}) });
  return Object.assign(gw, { logs });
}

/** A stage factory for tests: `handlers` with the stage's name and failure policy filled in. */
export function testStage(name: string, handlers: Omit<Stage, 'name' | 'failure'>, failure: Stage['failure'] = 'open'): StageFactory<never> {
  return { name, create: () => ({ name, failure, ...handlers }) };
}
