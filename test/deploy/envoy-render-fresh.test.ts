/**
 * gateway.yaml is the one source of truth for routing: the shipped envoy/envoy.yaml must be
 * exactly what `render-envoy --config config/gateway.yaml` prints. Edit the gateway config (or
 * extproc/envoy-render/template.ts), then regenerate:
 *   node --import tsx extproc/main.ts render-envoy --config config/gateway.yaml > envoy/envoy.yaml
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../extproc/config/load.js';
import { renderEnvoy } from '../../extproc/envoy-render/index.js';
import { builtinStages, stageCheck } from '../../extproc/stages/registry.js';

const root = join(import.meta.dirname, '../..');

describe('envoy/envoy.yaml', () => {
  it('is the rendering of config/gateway.yaml (regenerate it with render-envoy when this fails)', async () => {
    const config = await loadConfigFile(join(root, 'config/gateway.yaml'), {}, [stageCheck(builtinStages)]);
    expect(readFileSync(join(root, 'envoy/envoy.yaml'), 'utf8')).toBe(renderEnvoy(config));
  });
});
