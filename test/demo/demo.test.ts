/**
 * Keeps `npm run demo` working: runs its main function with a print sink and checks that it
 * completes and prints the key facts of each call (client result, gateway lines by request id,
 * the stand-in's attempts and ext_proc counters) and the closing summary.
 */
import { describe, expect, it } from 'vitest';
import { runDemo, type DemoResult } from './demo.js';

describe('npm run demo', () => {
  it('runs the five calls end to end and prints what each layer saw', async () => {
    const lines: string[] = [];
    const result: DemoResult = await runDemo({ print: (l) => lines.push(l), chunkDelayMs: 5 });
    const out = lines.join('\n');
    const [plain, streamed, anthropic, notJson, limited] = result.steps;

    // Every call happened, in order, with the status the client should see.
    expect(result.steps.map((s) => s.status)).toEqual([200, 200, 200, 400, 429]);
    expect(result.durationMs).toBeLessThan(10_000);

    // 1. OpenAI non-streaming: the fake's reply reached the SDK.
    expect(plain!.text).toBe('This is a fake openai reply to: What does an ext_proc server do?');
    expect(out).toContain('client    200  "This is a fake openai reply to: What does an ext_proc server do?"');

    // 2./3. Streams arrive as several deltas, each printed as it came.
    expect(streamed!.deltas.length).toBeGreaterThan(3);
    expect(streamed!.deltas.join('')).toBe('This is a fake openai reply to: Stream me a hello');
    expect(anthropic!.deltas.join('')).toBe('This is a fake anthropic reply to: Hello Claude');
    for (const d of [...streamed!.deltas, ...anthropic!.deltas]) expect(out).toContain(JSON.stringify(d));
    expect(out).toContain('stop_reason end_turn');

    // Gateway lines are grouped by request id, and every stream the stand-in opened was closed.
    for (const s of result.steps) {
      expect(s.gatewayLines.length).toBeGreaterThan(0);
      expect(s.gatewayLines.every((l) => l['request_id'] === s.requestId)).toBe(true);
      expect(out).toContain(`log lines with request_id ${s.requestId}`);
      const streams = (s.counters['ext_proc.streams_started'] ?? 0) + (s.counters['upstream_ext_proc.streams_started'] ?? 0);
      expect(s.gatewayLines.filter((l) => l['msg'] === 'stream closed')).toHaveLength(streams);
      expect(s.gatewayLines.some((l) => l['msg'] === 'decided' && l['kind'] === 'request_body')).toBe(true);
    }
    expect(out).toMatch(/decided\s+request_body/);

    // 4. A body that is not JSON: logged as not inspectable on each stream, passed through.
    const warn = notJson!.gatewayLines.filter((l) => l['msg'] === 'request not inspectable');
    expect(warn.length).toBeGreaterThan(0);
    expect(warn[0]).toMatchObject({ stage: 'parse-request', code: 'INVALID_REQUEST', policy: 'continue' });
    expect(out).toContain('[warn] request not inspectable');
    expect(notJson!.attempts).toEqual([expect.objectContaining({ providerStatus: 400 })]);

    // 5. 429 on every attempt: the retry policy walks all four steps of the default chain
    // (claude-opus-4 → gpt-4o → claude-sonnet-4 → mistral-large), then gives up.
    expect(limited!.attempts.map((a) => [a.hostHeader, a.providerStatus])).toEqual([
      ['api.anthropic.com', 429],
      ['api.openai.com', 429],
      ['api.anthropic.com', 429],
      ['api.mistral.ai', 429],
    ]);
    expect(limited!.counters).toMatchObject({
      'cluster.llm_chain.upstream_rq_retry': 3,
      'ext_proc.streams_started': 1,
      'upstream_ext_proc.streams_started': 4,
    });
    expect(out).toContain('access log: attempts=4');
    expect(out).toContain('attempt 4 → ');
    expect(out).toContain('4 streams, 4 messages sent, 4 answers received'); // request headers only per try
    expect(out).toContain('retry-after: 2');

    // The stand-in's view is printed for each call, and the run ends with the summary.
    expect(out.match(/ext_proc on the HCM filter: +1 stream, 2 messages sent/g)).toHaveLength(5);
    expect(lines.some((l) => l.startsWith('━━ What you just saw'))).toBe(true);
    expect(lines.at(-1)).toMatch(/^\(finished in \d+ ms\)$/);
  }, 20_000);
});
