/**
 * Keeps the second half of `npm run demo` working: every stage through the stand-in with the SDKs
 * (a redacted prompt restored, a cache miss then hit, a fallback, a cross-dialect stream, the
 * gateway's own 429, and the cost records).
 */
import { describe, expect, it } from 'vitest';
import { runStagesDemo } from './stagesDemo.js';

describe('npm run demo, part 2', () => {
  it('shows every stage at work and prints each fact', async () => {
    const lines: string[] = [];
    const r = await runStagesDemo({ print: (l) => lines.push(l) });
    const out = lines.join('\n');
    expect(r.providerSawEmail).toBe(false);
    expect(r.clientGotEmail).toBe(true);
    expect(r.servedBy).toBe('claude-opus-4'); // an OpenAI client served by Anthropic
    expect(r.cache).toEqual(['miss', 'hit']);
    expect(r.fallback).toEqual({ model: 'gpt-4o', attempts: '2' });
    expect(r.crossDialectText).toContain('Hello from Anthropic land');
    expect(r.limited.status).toBe(429);
    expect(Number(r.limited.retryAfter)).toBeGreaterThan(0);
    // One record per request that reached the gateway's usage stage (the cache hit included).
    expect(r.records.length).toBeGreaterThanOrEqual(10);
    expect(r.records.some((rec) => Number(rec['cost_micros']) > 0)).toBe(true);
    expect(out).toContain('a placeholder: <EMAIL_1>');
    expect(out).not.toContain('provider received  the address');
  }, 60_000);
});
