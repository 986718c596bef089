/**
 * @module envoy-render/command
 * `render-envoy --config FILE [--out FILE]`: prints the Envoy bootstrap for a gateway config
 * (envoy/envoy.yaml is this output for config/gateway.yaml). `${ENV}` references resolve against
 * the environment as at start; a secret never reaches the output (no provider key is rendered).
 */
import { writeFile } from 'node:fs/promises';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { parseFlags } from '../cliArgs.js';
import { renderEnvoy } from './render.js';

export interface RenderEnvoyIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

const usage = 'usage: render-envoy --config FILE [--out FILE]\n';

/**
 * Runs the command with the arguments after `render-envoy`; resolves to the exit code
 * (0 rendered, 1 bad config, 2 bad usage). Never throws.
 */
export async function renderEnvoyCommand(
  argv: readonly string[],
  io: RenderEnvoyIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) },
): Promise<number> {
  const parsed = parseFlags('render-envoy', argv, ['config', 'out'], usage, io);
  if ('exit' in parsed) return parsed.exit;
  const { config, out } = parsed.values;
  if (!config) {
    io.stderr(`render-envoy: --config FILE is required\n${usage}`);
    return 2;
  }
  try {
    // Placeholders keep ${SECRET} references valid without requiring the secrets: no key is rendered.
    const cfg = await loadConfigFile(config, io.env ?? process.env);
    const yaml = renderEnvoy(cfg);
    if (out) await writeFile(out, yaml);
    else io.stdout(yaml);
    return 0;
  } catch (err) {
    io.stderr(err instanceof ConfigError ? `${err.message}\n` : `render-envoy: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
