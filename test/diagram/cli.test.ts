/**
 * The `diagram` subcommand: its contract (Mermaid and DOT on stdout, SVG/PNG through Graphviz,
 * a clear error without Graphviz), the subcommand wired into main.ts, and the README's
 * architecture drawing equal to the command's output for config/gateway.yaml.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { diagramCommand } from '../../extproc/diagram/command.js';
import { readmeDiagram, spliceReadmeDiagram } from '../../extproc/diagram/readme.js';

const root = join(import.meta.dirname, '../..');
const gatewayYaml = join(root, 'config/gateway.yaml');
const dir = mkdtempSync(join(tmpdir(), 'diagram-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; out: string; bytes: Buffer; err: string }> {
  const out: Buffer[] = [];
  let err = '';
  const code = await diagramCommand(argv, { stdout: (d) => out.push(Buffer.from(d)), stderr: (t) => (err += t), env });
  const bytes = Buffer.concat(out);
  return { code, out: bytes.toString('utf8'), bytes, err };
}

describe('diagram command', () => {
  it('prints Mermaid by default and DOT with --format dot', async () => {
    const m = await run(['--config', gatewayYaml]);
    expect(m.code).toBe(0);
    expect(m.out.startsWith('flowchart LR\n')).toBe(true);
    const d = await run(['--config', gatewayYaml, '--format', 'dot']);
    expect(d.code).toBe(0);
    expect(d.out.startsWith('digraph gateway {')).toBe(true);
    expect(d.out.trimEnd().endsWith('}')).toBe(true);
  });

  it('draws SVG and PNG through Graphviz, to stdout or --out', async () => {
    const svg = await run(['--config', gatewayYaml, '--format=svg']);
    expect(svg.code, svg.err).toBe(0);
    expect(/^(<\?xml|<svg)/.test(svg.out)).toBe(true);
    const png = join(dir, 'g.png');
    const p = await run(['--config', gatewayYaml, '--format', 'png', '--out', png]);
    expect(p.code, p.err).toBe(0);
    expect(readFileSync(png).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  });

  it('says what to install when Graphviz is missing', async () => {
    const r = await run(['--config', gatewayYaml, '--format', 'svg'], { ...process.env, GRAPHVIZ_DOT: join(dir, 'no-such-dot') });
    expect(r.code).toBe(1);
    expect(r.err).toContain('apt-get install graphviz');
    // Mermaid needs no Graphviz.
    expect((await run(['--config', gatewayYaml], { ...process.env, GRAPHVIZ_DOT: join(dir, 'no-such-dot') })).code).toBe(0);
  });

  it('refuses bad usage (2) and a bad config (1) with a message', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run(['--config', gatewayYaml, '--format', 'jpeg'])).err).toContain('--format must be one of');
    const bad = await run(['--config', join(dir, 'missing.yaml')]);
    expect(bad.code).toBe(1);
    expect(bad.err).not.toBe('');
  });

  it('is a subcommand of the gateway binary', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(root, 'extproc/main.ts'), 'diagram', '--config', gatewayYaml, '--format', 'mermaid'], { cwd: root });
    expect(stdout).toBe((await run(['--config', gatewayYaml])).out);
  }, 60_000);
});

describe('README architecture drawing', () => {
  it('equals `diagram --config config/gateway.yaml --format mermaid` (run: npx tsx test/diagram/update-readme.ts)', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const copy = readmeDiagram(readme);
    expect(copy, 'README.md has no <!-- diagram:begin … --> block').toBeDefined();
    // Without provider keys in the environment: the drawing holds no secret, so it cannot differ.
    const fresh = await run(['--config', gatewayYaml], {});
    expect(fresh.code).toBe(0);
    expect(copy, 'README diagram is stale: run `npx tsx test/diagram/update-readme.ts`').toBe(fresh.out);
  });

  it('the freshness check can fail: a changed drawing is detected', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const changed = spliceReadmeDiagram(readme, 'flowchart LR\n  a --> b\n');
    expect(readmeDiagram(changed)).not.toBe(readmeDiagram(readme));
    expect(changed.length).toBeLessThan(readme.length);
  });
});
