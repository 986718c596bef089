#!/usr/bin/env node
/**
 * @module main
 * Command line: `llm-extproc [--config FILE]` runs the gateway (without a file:
 * config/embedded.yaml, every stage on embedded backends, no Redis or Postgres needed); `--check-config FILE` validates
 * a config and exits; `render-envoy --config FILE [--out FILE]` prints the Envoy bootstrap that
 * config needs (envoy/envoy.yaml is this output); `report` prints cost tables from the usage
 * ledger; `--version` prints the version. SIGTERM/SIGINT
 * drain gracefully.
 */
import { parseArgs } from 'node:util';
import { startGateway } from './app.js';
import { renderEnvoyCommand } from './envoy-render/command.js';
import { reportCommand } from './usage/report.js';
import { diagramCommand } from './diagram/command.js';
import { ConfigError, loadConfigFile } from './config/load.js';
import { builtinStages, stageCheck } from './stages/registry.js';
import { createLogger, describeError } from './telemetry/logger.js';
import { packageRoot, version } from './version.js';
import { join } from 'node:path';

const USAGE = `usage: llm-extproc [--config FILE] | --check-config FILE | render-envoy --config FILE [--out FILE] | report … | --version
  --config FILE        gateway config (YAML); also GATEWAY_CONFIG. Without one: embedded defaults.
  --check-config FILE  validate FILE (keys, cross-references, stages, \${ENV} references) and exit
  render-envoy         print the Envoy bootstrap YAML for --config FILE (or write it to --out FILE)
  report               cost tables for a date range (--config FILE | --store-dir DIR | --database-url URL)
                       [--from D] [--to D] [--by caller|model|day] [--csv] [--svg FILE]
  diagram              draw the gateway as --config FILE sets it up: --format mermaid|dot|svg|png [--out FILE]
  --version            print the version and exit`;

async function main(): Promise<number> {
  // A subcommand, not a flag: its own arguments follow it.
  if (process.argv[2] === 'render-envoy') return renderEnvoyCommand(process.argv.slice(3));
  if (process.argv[2] === 'report') return reportCommand(process.argv.slice(3));
  if (process.argv[2] === 'diagram') return diagramCommand(process.argv.slice(3));
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: 'string' },
        'check-config': { type: 'string' },
        version: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${describeError(err)}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (args.version) {
    process.stdout.write(`llm-extproc ${version}\n`);
    return 0;
  }
  const checks = [stageCheck(builtinStages)];
  if (args['check-config'] !== undefined) {
    try {
      await loadConfigFile(args['check-config'], process.env, checks);
      process.stdout.write(`${args['check-config']}: OK\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`${err instanceof ConfigError ? err.message : describeError(err)}\n`);
      return 1;
    }
  }

  const given = args.config ?? process.env['GATEWAY_CONFIG'];
  // Without a config: config/embedded.yaml, every stage on embedded backends (no server needed).
  const configPath = given ? given : join(packageRoot, 'config', 'embedded.yaml');
  let config;
  try {
    config = await loadConfigFile(configPath, process.env, checks);
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : describeError(err)}\n`);
    return 1;
  }
  const log = createLogger(config.logging.level);
  const gateway = await startGateway({ config, configPath });
  if (!given) log.info('no config file given; running on embedded defaults', { config: 'config/embedded.yaml', stages: config.pipeline.stages.length });

  process.on('unhandledRejection', (reason) => log.error('unhandled rejection', { error: describeError(reason) }));
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info('draining', { signal, streams: gateway.server.activeStreams, grace_ms: gateway.config.server.shutdownGraceMs });
      gateway.close().then(
        () => {
          log.info('stopped');
          resolve(0);
        },
        (err: unknown) => {
          log.error('shutdown failed', { error: describeError(err) });
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fatal: ${describeError(err)}\n`);
    process.exit(1);
  },
);
