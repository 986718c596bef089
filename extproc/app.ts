/**
 * @module app
 * Composition root of a running gateway: config → logger → pipeline → gRPC server, plus
 * hot reload. `main.ts` adds the CLI and signals; tests and benches call `startGateway` directly.
 */
import { loadConfigFile, type ConfigCheck } from './config/load.js';
import type { GatewayConfig } from './config/schema.js';
import { watchFile, type StopWatching } from './config/watch.js';
import { startAdminServer } from './admin/index.js';
import { ServiceRegistry } from './pipeline/services.js';
import { startExtProcServer, type ExtProcServer } from './server/grpcServer.js';
import { buildPipelines, builtinStages, stageCheck, type Pipelines, type StageRegistry } from './stages/registry.js';
import { createLogger, switchableLogger, type LogSink, type Logger } from './telemetry/logger.js';

/** How to start a gateway. */
export interface GatewayOptions {
  /** A validated config (parseConfig / loadConfigFile). */
  config: GatewayConfig;
  /** When set, the file is watched and reloaded on change. */
  configPath?: string;
  /** Stage factories by name; built-ins by default. */
  registry?: StageRegistry;
  /** Where log lines go; stdout by default. */
  logSink?: LogSink;
  /** Environment for `${ENV}` substitution on reload. */
  env?: NodeJS.ProcessEnv;
}

/** A running gateway. */
export interface Gateway {
  readonly port: number;
  readonly server: ExtProcServer;
  /** Config currently in force. */
  readonly config: GatewayConfig;
  /** Swaps in a new config for streams that open from now on; throws if it cannot be built. */
  reload(config: GatewayConfig): void;
  /** Re-reads `configPath`; a bad file keeps the old config and is logged. Resolves true when applied. */
  reloadFromFile(): Promise<boolean>;
  /** Graceful stop: drain streams in flight up to `graceMs` (default: server.shutdownGraceMs). */
  close(graceMs?: number): Promise<void>;
}

/** Starts the ext_proc server for `options.config`. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const registry = options.registry ?? builtinStages;
  const checks: ConfigCheck[] = [stageCheck(registry)];
  let config = options.config;
  let log: Logger = createLogger(config.logging.level, options.logSink);
  // Streams log through this so a reload's new level applies to streams opened after it.
  const streamLog = switchableLogger(log);
  // Shared services (stores, clients) live across reloads; a replaced one stays open for the
  // streams still using the old pipelines, as long as the drain grace period.
  const services = new ServiceRegistry(log, config.server.shutdownGraceMs);
  const build = (cfg: GatewayConfig, buildLog: Logger): Pipelines => {
    const generation = services.generation();
    try {
      const built = buildPipelines(cfg, registry, { log: buildLog, services: generation.services });
      generation.commit();
      return built;
    } catch (err) {
      generation.abandon();
      throw err;
    }
  };
  let pipelines: Pipelines = build(config, log);

  const server = await startExtProcServer(
    { ...config.server, maxInspectBytes: config.pipeline.maxInspectBytes, observerLingerMs: config.pipeline.observerLingerMs },
    (role) => pipelines[role],
    streamLog.logger,
  );
  log.info('gateway listening', { port: server.port, stages: config.pipeline.stages.length });
  // admin.* needs a restart, like server.*.
  const admin = config.admin.enabled ? await startAdminServer(config.admin, { config: () => config, log }) : undefined;

  const apply = (next: GatewayConfig): void => {
    const nextLog = createLogger(next.logging.level, options.logSink);
    const nextPipelines = build(next, nextLog);
    if (JSON.stringify(next.server) !== JSON.stringify(config.server)) {
      nextLog.warn('server settings changed; they take effect after a restart');
    }
    config = next;
    log = nextLog;
    streamLog.set(nextLog);
    pipelines = nextPipelines;
  };

  const reloadFromFile = async (): Promise<boolean> => {
    if (!options.configPath) return false;
    try {
      apply(await loadConfigFile(options.configPath, options.env ?? process.env, checks));
      log.info('config reloaded', { path: options.configPath, stages: config.pipeline.stages.length });
      return true;
    } catch (err) {
      const problems = err instanceof Error && 'problems' in err ? (err as { problems: string[] }).problems : [String(err)];
      log.error('config reload rejected; keeping the running config', { path: options.configPath, problems: problems.join('; ') });
      return false;
    }
  };

  const stopWatching: StopWatching | undefined = options.configPath ? watchFile(options.configPath, () => void reloadFromFile()) : undefined;

  return {
    port: server.port,
    server,
    get config() {
      return config;
    },
    reload: apply,
    reloadFromFile,
    async close(graceMs?: number) {
      stopWatching?.();
      await server.shutdown(graceMs ?? config.server.shutdownGraceMs);
      // The admin page reads the ledger store: close it before the services.
      await admin?.close();
      await services.closeAll();
    },
  };
}
