/**
 * The usage stage end to end, on config/examples/usage.yaml: the OpenAI SDK → Envoy stand-in
 * (shipped envoy.yaml) → gateway → fake provider. A burst leaves one ledger row per request with
 * the provider's usage; closing the gateway in the middle of a burst (what SIGTERM does) still
 * leaves a row for every request the gateway admitted; and no log line of either run carries
 * prompt text, planted PII or the client's credential.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { builtinStages } from '../../extproc/stages/registry.js';
import { usageStage } from '../../extproc/stages/usage.js';
import { openStore } from '../../extproc/store/index.js';
import { LEDGER_TABLE } from '../../extproc/usage/ledgerSchema.js';
import { expectedAnswer } from '../fakes/index.js';
import { startE2E, type E2E } from '../e2e/helpers.js';
import { usageExampleConfig } from './helpers.js';

/** The usage stage, unless the registry already ships it. */
const extraStages: StageFactory<never>[] = builtinStages.has('usage') ? [] : [usageStage as unknown as StageFactory<never>];

const SECRET_KEY = 'sk-live-DO-NOT-LOG-4f9a2b7c1d';
const PLANTED_EMAIL = 'jane.planted.doe@example.org';
const PLANTED_PROMPT = 'zebra-quartz-umbrella secret prompt phrase';

/** The example config with a temp data dir, a free metrics port and a loopback server. */
function exampleConfig(dataDir: string): Record<string, unknown> {
  const { config, usage } = usageExampleConfig(dataDir);
  // Flush only on size or close, so the close really is what writes the tail of a burst.
  usage.ledger.flushMs = 60_000;
  usage.ledger.batchSize = 1000;
  return config;
}

async function ledgerRows(dataDir: string): Promise<Record<string, any>[]> {
  const store = await openStore({ kind: 'embedded', dataDir });
  try {
    await store.migrate();
    return (await store.pool.query(`SELECT * FROM ${LEDGER_TABLE} ORDER BY id`)).rows;
  } finally {
    await store.close();
  }
}

function assertNoSecrets(logs: Record<string, unknown>[]): void {
  const text = logs.map((l) => JSON.stringify(l)).join('\n');
  for (const needle of [SECRET_KEY, PLANTED_EMAIL, PLANTED_PROMPT, 'zebra-quartz']) expect(text).not.toContain(needle);
}

const dirs: string[] = [];
const running: E2E[] = [];
afterAll(async () => {
  for (const e of running) await e.close().catch(() => undefined);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function client(e: E2E): OpenAI {
  return new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: SECRET_KEY, maxRetries: 0 });
}
const messages = [{ role: 'user' as const, content: `${PLANTED_PROMPT}; mail me at ${PLANTED_EMAIL}` }];

describe('usage end to end (config/examples/usage.yaml)', () => {
  it('a burst of 40 requests, streamed and not, leaves one exact ledger row each', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'usage-e2e-'));
    dirs.push(dataDir);
    const e = await startE2E('openai', exampleConfig(dataDir), extraStages);
    running.push(e);
    const c = client(e);
    const N = 40;
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        if (i % 2 === 0) {
          const r = await c.chat.completions.create({ model: 'gpt-4o', messages });
          expect(r.usage?.completion_tokens).toBeGreaterThan(0);
        } else {
          const s = await c.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
          for await (const _ of s) void _;
        }
      }),
    );
    await e.close();
    running.pop();
    const rows = await ledgerRows(dataDir);
    expect(rows).toHaveLength(N);
    const exp = expectedAnswer('openai', { model: 'gpt-4o', messages });
    for (const row of rows) {
      expect(Number(row.input_tokens)).toBe(exp.inputTokens);
      expect(Number(row.output_tokens)).toBe(exp.outputTokens);
      expect(row.estimated).toBe(false);
      expect(row.served_model).toBe('gpt-4o');
      expect(row.provider).toBe('openai');
      expect(Number(row.cost_micros)).toBe(Math.round((exp.inputTokens * 2.5 + exp.outputTokens * 10)));
      expect(row.caller).toMatch(/^key:[0-9a-f]{16}$/);
      expect(row.status).toBe(200);
      expect(row.error_class).toBeNull();
    }
    expect(new Set(rows.map((r) => r.request_id)).size).toBe(N);
    expect(rows.filter((r) => r.stream)).toHaveLength(N / 2);
    expect(rows.filter((r) => r.stream).every((r) => r.ttft_ms !== null && r.ttft_ms <= r.latency_ms)).toBe(true);
    const usageLines = e.gateway.logs.filter((l) => l['msg'] === 'usage');
    expect(usageLines).toHaveLength(N);
    assertNoSecrets(e.gateway.logs);
  }, 90_000);

  it('closing the gateway mid-burst (SIGTERM) loses no admitted record', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'usage-sigterm-'));
    dirs.push(dataDir);
    const e = await startE2E('openai', exampleConfig(dataDir), extraStages);
    running.push(e);
    // Slow streams, so the close lands while many are in flight.
    e.provider.setDefault({ chunkDelayMs: 15 });
    const c = client(e);
    const N = 60;
    const results = Array.from({ length: N }, async () => {
      const s = await c.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
      for await (const _ of s) void _;
    });
    // Close once a third of the requests reached the provider.
    await e.provider.waitForRequests(20, 20_000);
    const closing = e.gateway.close(5000);
    const settled = await Promise.allSettled(results);
    await closing;
    await e.envoy.close();
    await e.provider.close();
    running.pop();

    const rows = await ledgerRows(dataDir);
    const logged = e.gateway.logs.filter((l) => l['msg'] === 'usage').map((l) => l['request_id'] as string);
    // Every record the stage produced is in the ledger, once.
    expect(rows.map((r) => r.request_id).sort()).toEqual([...logged].sort());
    // Every request that reached the provider through the gateway was admitted and has its row.
    const reached = new Set(e.provider.requests.map((r) => String(r.headers['x-request-id'])));
    for (const id of reached) expect(logged).toContain(id);
    expect(rows.length).toBeGreaterThanOrEqual(20);
    expect(settled.filter((s) => s.status === 'fulfilled').length).toBeLessThanOrEqual(rows.length);
    assertNoSecrets(e.gateway.logs);
  }, 90_000);
});
