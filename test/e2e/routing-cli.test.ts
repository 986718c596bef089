/**
 * `node dist/extproc/main.js render-envoy --config FILE` (run here from source with tsx): prints
 * the Envoy bootstrap for that config, the same text renderEnvoy gives; bad usage exits 2.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../extproc/config/load.js';
import { renderEnvoy } from '../../extproc/envoy-render/render.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const main = join(root, 'extproc/main.ts');
const tsx = join(root, 'node_modules/.bin/tsx');

describe('render-envoy subcommand', () => {
  it('prints the rendered bootstrap of the config, each chain step a priority of one cluster', async () => {
    const configPath = join(root, 'config/gateway.yaml');
    const { stdout } = await run(tsx, [main, 'render-envoy', '--config', configPath], { env: { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', MISTRAL_API_KEY: '' } });
    expect(stdout).toBe(renderEnvoy(await loadConfigFile(configPath, process.env)));
    expect(stdout).toContain('- name: llm_chain');
    expect(stdout).toMatch(/- priority: 3\n/);
  }, 30_000);

  it('without --config: usage on stderr, exit code 2', async () => {
    const err = (await run(tsx, [main, 'render-envoy']).catch((x: unknown) => x)) as { code: number; stderr: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('--config FILE is required');
  }, 30_000);
});
