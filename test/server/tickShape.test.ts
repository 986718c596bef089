/**
 * keepTickObjectShape (extproc/server/tickShape.ts): with one nextTick entry kept, full GCs no
 * longer turn the feedback of nextTick's queue-entry literal megamorphic. Each case runs in its
 * own process (V8 natives and --expose-gc), the same scenario with and without the entry kept.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const probe = join(import.meta.dirname, 'fixtures/tick-shape-probe.ts');

function literalFeedback(mode: 'keep' | 'none'): string[] {
  // %DebugPrint writes through C stdio, which loses output on the non-blocking pipe Node
  // makes of a child's stdout: a file instead.
  const file = join(mkdtempSync(join(tmpdir(), 'tick-shape-')), 'stdout');
  const fd = openSync(file, 'w');
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--allow-natives-syntax', '--expose-gc', probe, mode], {
    cwd: join(import.meta.dirname, '../..'),
    stdio: ['ignore', fd, 'pipe'],
    encoding: 'utf8',
    timeout: 30_000,
  });
  closeSync(fd);
  expect(run.status, run.stderr).toBe(0);
  return [...readFileSync(file, 'utf8').matchAll(/DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((m) => m[1]!);
}

describe('nextTick entry shape kept alive', () => {
  it('keeps every property of the entry literal monomorphic across full GCs', () => {
    const states = literalFeedback('keep');
    expect(states.length).toBeGreaterThanOrEqual(4);
    expect(states.every((s) => s === 'MONOMORPHIC'), states.join(' ')).toBe(true);
  });

  it('without it, the same GCs make them megamorphic on Node 20 (what the keeper prevents)', () => {
    const states = literalFeedback('none');
    expect(states.length).toBeGreaterThanOrEqual(4);
    // Should a later Node build its queue entries differently, this fails: then the keeper has
    // nothing left to prevent and can go.
    expect(states.filter((s) => s === 'MEGAMORPHIC').length, states.join(' ')).toBeGreaterThan(0);
  });
});
