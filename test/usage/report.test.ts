/**
 * `report` against a real embedded ledger: the three tables for a date range, CSV, the SVG
 * chart, argument errors; and the config route to the store (config/examples/usage.yaml).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../extproc/store/index.js';
import { LedgerWriter } from '../../extproc/usage/ledger.js';
import { reportCommand } from '../../extproc/usage/report.js';
import { dailyCostSvg } from '../../extproc/usage/chart.js';
import { sampleRecord } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'report-'));
  const store = await openStore({ kind: 'embedded', dataDir: dir });
  await store.migrate();
  const w = new LedgerWriter(store.pool);
  const at = (d: number, h = 12) => Date.UTC(2026, 10, d, h);
  w.add(sampleRecord({ caller: 'team-a', startedAt: at(1), costMicros: 1_500_000, servedModel: 'gpt-4o' }));
  w.add(sampleRecord({ caller: 'team-a', startedAt: at(2), costMicros: 250_000, servedModel: 'claude-opus-4', provider: 'anthropic' }));
  w.add(sampleRecord({ caller: 'team-b', startedAt: at(2), costMicros: 3_000_001, servedModel: 'gpt-4o', errorClass: 'truncated' }));
  w.add(sampleRecord({ caller: 'team,"c"', startedAt: at(3), costMicros: 7, servedModel: 'gpt-4o' }));
  // Outside the range.
  w.add(sampleRecord({ caller: 'team-z', startedAt: at(20), costMicros: 99_000_000 }));
  await w.close();
  await store.close();
}, 60_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await reportCommand(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), today: '2026-11-30' });
  return { code, out, err };
}

describe('report', () => {
  it('prints per-caller, per-model and per-day tables for the range, in USD', async () => {
    const r = await run(['--store-dir', dir, '--from', '2026-11-01', '--to', '2026-11-03']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('by caller');
    expect(r.out).toMatch(/team-b\s+1\s+100\s+50\s+20\s+3\.000001/);
    expect(r.out).toMatch(/team-a\s+2\s+200\s+100\s+40\s+1\.750000/);
    expect(r.out).toMatch(/claude-opus-4\s+anthropic\s+1/);
    expect(r.out).toMatch(/2026-11-02\s+2\s+200\s+100\s+40\s+3\.250001/);
    expect(r.out).not.toContain('team-z');
  });

  it('--csv prints one table as RFC 4180 CSV', async () => {
    const r = await run(['--store-dir', dir, '--from=2026-11-01', '--to=2026-11-03', '--csv', '--by', 'caller']);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe('caller,requests,input_tokens,output_tokens,cached_input_tokens,cost_usd,saved_usd,errors');
    expect(lines[1]).toBe('team-b,1,100,50,20,3.000001,0.000000,1');
    expect(lines).toContain('"team,""c""",1,100,50,20,0.000007,0.000000,0');
  });

  it('--svg writes a chart of daily cost per caller', async () => {
    const file = path.join(dir, '..', `chart-${process.pid}.svg`);
    const r = await run(['--store-dir', dir, '--from', '2026-11-01', '--to', '2026-11-03', '--by', 'day', '--svg', file]);
    expect(r.code).toBe(0);
    const svg = fs.readFileSync(file, 'utf8');
    fs.rmSync(file);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('team-a');
    expect(svg).toContain('team,&quot;c&quot;');
    expect(svg).toContain('2026-11-02 team-b: $3.000001');
    expect((svg.match(/<rect [^>]*><title>/g) ?? []).length).toBe(4);
  });

  it('refuses bad arguments with exit code 2', async () => {
    expect((await run(['--from', '2026-11-01'])).code).toBe(2);
    expect((await run(['--store-dir', dir, '--from', '2026-13-45x'])).code).toBe(2);
    expect((await run(['--store-dir', dir, '--from', '2026-11-05', '--to', '2026-11-01'])).code).toBe(2);
    expect((await run(['--store-dir', dir, '--by', 'week'])).code).toBe(2);
    expect((await run(['--store-dir', dir, '--bogus'])).code).toBe(2);
  });

  it('finds the store through the usage stage of a config', async () => {
    const cfg = path.join(dir, '..', `usage-report-${process.pid}.yaml`);
    const example = fs.readFileSync(path.join(import.meta.dirname, '../../config/examples/usage.yaml'), 'utf8');
    fs.writeFileSync(cfg, example);
    let out = '';
    const code = await reportCommand(['--config', cfg, '--from', '2026-11-01', '--to', '2026-11-03', '--csv', '--by', 'day'], { stdout: (t) => (out += t), stderr: () => undefined, env: { USAGE_DATA_DIR: dir } });
    fs.rmSync(cfg);
    expect(code).toBe(0);
    expect(out.trim().split('\n')).toHaveLength(4);
  });

  it('an empty range still gives a valid chart', () => {
    const svg = dailyCostSvg([], '2026-11-01', '2026-11-02');
    expect(svg).toContain('no usage in this range');
  });
});
