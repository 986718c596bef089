/**
 * `npm start` with no config: config/embedded.yaml runs every stage (identity, PII, routing,
 * semantic cache, limits, translation, usage) on embedded backends. The real CLI is spawned; an
 * OpenAI SDK call goes through the stand-in (shipped envoy.yaml) to the fake providers and back,
 * touching each stage; SIGTERM then drains it and flushes the ledger.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../extproc/config/load.js';
import { builtinStages, stageCheck } from '../../extproc/stages/registry.js';
import { startStandin, type Standin } from '../envoy-standin/standin.js';
import { envoyYamlPath } from './helpers.js';
import { KEYS, endpointsFor, startFakes, type Fakes } from './routingHelpers.js';

const root = join(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('npm start on embedded defaults', () => {
  let child: ChildProcess;
  let out = '';
  let envoy: Standin;
  let fakes: Fakes;
  const dir = mkdtempSync(join(tmpdir(), 'gw-embedded-'));

  beforeAll(async () => {
    fakes = await startFakes();
    const env = {
      ...process.env,
      GATEWAY_CONFIG: '',
      GATEWAY_HOST: '127.0.0.1',
      CACHE_DIR: join(dir, 'cache'),
      USAGE_DATA_DIR: join(dir, 'usage'),
      METRICS_PORT: '0',
      ADMIN_PORT: '0',
      // The fakes check each provider's own key: translate must send the configured one.
      OPENAI_API_KEY: KEYS.openai,
      ANTHROPIC_API_KEY: KEYS.anthropic,
      MISTRAL_API_KEY: KEYS.mistral,
    };
    child = spawn(process.execPath, ['--import', 'tsx', join(root, 'extproc/main.ts')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 400 && !(out.includes('semantic cache ready') && out.includes('gateway listening')); i++) await sleep(50);
    if (!out.includes('gateway listening')) throw new Error('gateway did not start: ' + out);
    const config = await loadConfigFile(join(root, 'config/embedded.yaml'), env, [stageCheck(builtinStages)]);
    envoy = await startStandin({ envoyYamlPath, extProcAddress: '127.0.0.1:50051', clusterEndpoints: endpointsFor(config, fakes), seed: 5 });
  }, 60_000);

  afterAll(async () => {
    await envoy?.close();
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const f of Object.values(fakes ?? {})) await f.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a request through every stage, then drains on SIGTERM', async () => {
    expect(out).toContain('"stages":8');
    const client = new OpenAI({ baseURL: `${envoy.url}/v1`, apiKey: 'sk-client', maxRetries: 0, defaultHeaders: { 'x-caller-id': 'laptop-user' } });
    const question = 'Please write to alice@example.org about the invoice';
    const first = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: question }] }).withResponse();
    // route + translate: the default chain's first step (Anthropic) served an OpenAI client.
    expect(first.response.headers.get('x-gateway-model')).toBe('claude-opus-4');
    // rate-limit: the limiter's headers; semantic-cache: a miss.
    expect(first.response.headers.get('x-ratelimit-limit-requests')).toBe('600');
    expect(first.response.headers.get('x-gateway-cache')).toBe('miss');
    // pii: the provider never saw the address; the client got it back.
    expect(JSON.stringify(fakes.anthropic.requests.map((r) => r.json))).not.toContain('alice@example.org');
    expect(first.data.choices[0]!.message.content).toContain('alice@example.org');
    expect(out).not.toContain('alice@example.org');

    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // usage: one record for the request, written to the ledger before the exit.
    const record = out.split('\n').filter((l) => l.includes('"msg":"usage"'));
    expect(record.length).toBeGreaterThanOrEqual(1);
    expect(out).toContain('"msg":"stopped"');
  }, 60_000);
});
