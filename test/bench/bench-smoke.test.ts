/**
 * Keeps `npm run bench` working: a tiny run (no timing asserted — figures live in the bench's
 * own output, README "Performance") that checks both servers answered every request and that
 * the Envoy-like driver saw the gateway's mode_override take effect.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

interface Side {
  msgsPerReq: number;
  outcomes: { ok: number };
}
interface Scenario {
  variant: 'a' | 'b';
  concurrency: number;
  requests: number;
  floor: Side;
  ours: Side;
}

it('runs end to end against the floor and the gateway', () => {
  const json = join(mkdtempSync(join(tmpdir(), 'bench-')), 'out.json');
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/extproc-overhead.ts', '--requests', '20,20', '--warmup', '5', '--chunks', '3', '--rounds', '1', '--pin', 'off', '--json', json],
    // The default build compiles extproc/ and bench/ with tsc first (what `npm run bench` does).
    { cwd: root, encoding: 'utf8', timeout: 150_000 },
  );
  expect(run.status, run.stderr).toBe(0);
  const { scenarios } = JSON.parse(readFileSync(json, 'utf8')) as { scenarios: Scenario[] };
  expect(scenarios.map((s) => `${s.variant}@${s.concurrency}`)).toEqual(['a@1', 'a@32', 'b@1', 'b@32']);
  for (const s of scenarios) {
    expect(s.floor.outcomes.ok).toBe(s.requests);
    expect(s.ours.outcomes.ok).toBe(s.requests);
  }
  const a = scenarios.find((s) => s.variant === 'a')!;
  expect(a.floor.msgsPerReq).toBe(4); // headers, body, response headers, one buffered body
  expect(a.ours.msgsPerReq).toBe(1); // the gateway's first answer turned the rest off
  const b = scenarios.find((s) => s.variant === 'b')!;
  expect(b.ours.msgsPerReq).toBe(b.floor.msgsPerReq); // no overrides: every message on both
}, 180_000);
