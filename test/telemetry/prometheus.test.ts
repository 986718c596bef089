/**
 * The Prometheus endpoint scraped by a real Prometheus server (Debian's `prometheus` package,
 * started here with a temp config that scrapes the gateway's metrics port on loopback): after a
 * scrape, Prometheus's HTTP API must list the GenAI and gateway metric names with their labels.
 * Without the binary this test fails, by design: it is the proof the endpoint is scrapeable.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../extproc/telemetry/metrics.js';
import { sampleRecord } from '../usage/fixtures.js';

const PROMETHEUS = process.env['PROMETHEUS_BIN'] ?? 'prometheus';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let metrics: GatewayMetrics;
let prom: ChildProcess | undefined;
let promUrl: string;
let dir: string;
let promLog = '';

beforeAll(async () => {
  const probe = spawnSync(PROMETHEUS, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(`the real Prometheus server is required for this test and "${PROMETHEUS}" does not run (${probe.error?.message ?? `exit ${probe.status}`}): apt-get install -y prometheus (CI: .ci/run), or set PROMETHEUS_BIN`);
  }
  metrics = new GatewayMetrics({ prometheus: { port: 0, host: '127.0.0.1', path: '/metrics' } });
  const endpoint = await metrics.prometheus;
  expect(endpoint).toBeDefined();
  metrics.record(sampleRecord());
  metrics.record(sampleRecord({ requestedModel: 'claude-opus-4', servedModel: 'gpt-4o', fallbackPath: ['claude-opus-4', 'gpt-4o'], attempts: 2, pii: { EMAIL: 2, PHONE: 1 } }));
  metrics.record(sampleRecord({ cache: 'hit', tokens: { input: 0, output: 0, cachedInput: 0, cacheWrite: 0, reasoning: 0 }, costMicros: 0, savedMicros: 1200, outcome: 'immediate' }));
  metrics.record(sampleRecord({ rateLimit: 'reject', rateLimitName: 'tokens', errorClass: 'rate_limited', status: 429, outcome: 'immediate', tokens: { input: 0, output: 0, cachedInput: 0, cacheWrite: 0, reasoning: 0 } }));

  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prom-'));
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: gateway',
      `    metrics_path: ${endpoint!.path}`,
      '    static_configs:',
      `      - targets: ["127.0.0.1:${endpoint!.port}"]`,
      '',
    ].join('\n'),
  );
  prom = spawn(PROMETHEUS, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  prom.stdout?.on('data', (d: Buffer) => (promLog += d.toString()));
  prom.stderr?.on('data', (d: Buffer) => (promLog += d.toString()));
  // Wait until Prometheus has scraped the target successfully (up == 1) and stored a sample.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (prom.exitCode !== null) throw new Error(`prometheus exited (${prom.exitCode}): ${promLog.slice(-2000)}`);
    try {
      const r = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('gateway_requests_total')}`)).json()) as { data?: { result?: unknown[] } };
      if ((r.data?.result?.length ?? 0) > 0) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`Prometheus never scraped the gateway endpoint: ${promLog.slice(-2000)}`);
    await sleep(250);
  }
}, 90_000);

afterAll(async () => {
  prom?.kill('SIGTERM');
  if (prom && prom.exitCode === null) await new Promise((r) => prom!.once('exit', r));
  await metrics?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function series(match: string): Promise<Record<string, string>[]> {
  const r = (await (await fetch(`${promUrl}/api/v1/series?${new URLSearchParams({ 'match[]': match })}`)).json()) as { status: string; data: Record<string, string>[] };
  expect(r.status).toBe('success');
  return r.data;
}

describe('metrics scraped by a real Prometheus', () => {
  it('the target is up', async () => {
    const r = (await (await fetch(`${promUrl}/api/v1/query?query=up`)).json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    expect(r.data.result.find((s) => s.metric['job'] === 'gateway')?.value[1]).toBe('1');
  });

  it('stores the GenAI semantic-convention metrics with their attributes as labels', async () => {
    const tokens = await series('gen_ai_client_token_usage_bucket');
    expect(new Set(tokens.map((s) => s['gen_ai_token_type']))).toEqual(new Set(['input', 'output']));
    for (const s of tokens) {
      expect(s).toMatchObject({ gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai', gen_ai_response_model: 'gpt-4o' });
      expect(s['gen_ai_request_model']).toBeDefined();
      expect(s['le']).toBeDefined();
    }
    const duration = await series('gen_ai_client_operation_duration_count');
    expect(duration.some((s) => s['error_type'] === 'rate_limited')).toBe(true);
    expect((await series('gen_ai_server_time_to_first_token_sum')).length).toBeGreaterThan(0);
  });

  it('stores the gateway metrics: cost, cache, PII, rate limits, fallbacks, errors', async () => {
    expect((await series('gateway_cost_usd_total'))[0]).toMatchObject({ gateway_caller: 'spiffe://cluster.local/ns/a/sa/billing' });
    expect(new Set((await series('gateway_cache_requests_total')).map((s) => s['gateway_cache_status']))).toEqual(new Set(['hit', 'miss']));
    expect((await series('gateway_cache_saved_usd_total')).length).toBe(1);
    expect(new Set((await series('gateway_pii_entities_total')).map((s) => s['gateway_pii_entity_type']))).toEqual(new Set(['EMAIL', 'PHONE']));
    expect((await series('gateway_ratelimit_rejections_total'))[0]).toMatchObject({ gateway_ratelimit_limit: 'tokens' });
    expect((await series('gateway_fallbacks_total'))[0]).toMatchObject({ gateway_fallback_from: 'claude-opus-4', gateway_fallback_to: 'gpt-4o' });
    expect((await series('gateway_errors_total'))[0]).toMatchObject({ error_type: 'rate_limited' });
    const value = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('sum(gateway_pii_entities_total)')}`)).json()) as { data: { result: { value: [number, string] }[] } };
    // EMAIL 1 on each of three default records + EMAIL 2 and PHONE 1 on one: 1·3 + 3
    expect(value.data.result[0]?.value[1]).toBe('6');
  });
});
