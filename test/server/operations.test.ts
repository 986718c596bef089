/**
 * Operations: gRPC health for probes, graceful drain on shutdown, hot reload that never touches
 * streams in flight, and the CLI (--version, --check-config, SIGTERM).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { loadService } from '../../extproc/server/protocol.js';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { connect, requestHeaders, setHeadersOf } from '../helpers/extProcClient.js';
import { startTestGateway, testStage, type TestGateway } from '../helpers/gateway.js';

const root = join(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const health = loadService('grpc/health/v1/health.proto', 'grpc.health.v1.Health')['Check']!;

function check(port: number, service: string): Promise<string> {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(health.path, health.requestSerialize, health.responseDeserialize, { service }, (err: ServiceError | null, res?: unknown) => {
      client.close();
      if (err) reject(err);
      else resolve((res as { status: string }).status);
    });
  });
}

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close(200);
  gw = undefined;
});

describe('health', () => {
  it('serves grpc.health.v1 for the server and the ext_proc service, NOT_SERVING once draining', async () => {
    gw = await startTestGateway();
    expect(await check(gw.port, '')).toBe('SERVING');
    expect(await check(gw.port, 'envoy.service.ext_proc.v3.ExternalProcessor')).toBe('SERVING');
    await expect(check(gw.port, 'nope')).rejects.toMatchObject({ code: 5 });
    gw.server.health.setAll('NOT_SERVING');
    expect(await check(gw.port, '')).toBe('NOT_SERVING');
  });
});

describe('graceful shutdown', () => {
  it('lets a stream in flight finish, refuses new ones, and cancels stragglers at the deadline', async () => {
    const slow: StageFactory<never> = testStage('test-slow', {
      requestBody: () => sleep(300),
    });
    gw = await startTestGateway({ pipeline: { stages: ['test-slow'] } }, [slow]);
    const client = connect(gw.port);
    const inFlight = client.open();
    inFlight.send(requestHeaders());
    await inFlight.next();
    inFlight.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
    const straggler = client.open();
    straggler.send(requestHeaders());
    await straggler.next(); // open, but Envoy never finishes it
    await sleep(20);
    const closing = gw.close(1000);
    await sleep(20);
    // The answer that was being computed still arrives.
    expect((await inFlight.next(1000)).response).toBe('request_body');
    inFlight.end();
    expect((await inFlight.status).code).toBe(0);
    await closing; // deadline reached: the straggler is cancelled
    expect(gw.server.activeStreams).toBe(0);
    const s = await straggler.status;
    expect(s.code).not.toBe(undefined);
    client.close();
    gw = undefined;
  });
});

describe('hot reload', () => {
  const tagStage = (name: string): StageFactory<never> =>
    testStage(name, { requestHeaders: (_x, out) => out.setHeader('x-config', name), requestBody: () => sleep(150) });

  it('applies a changed file to new streams, keeps streams in flight on their config, and keeps the old config on a bad file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-reload-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'pipeline: { stages: [test-v1] }\n');
    gw = await startTestGateway({ pipeline: { stages: ['test-v1'] } }, [tagStage('test-v1'), tagStage('test-v2')], file);
    const client = connect(gw.port);

    const old = client.open();
    old.send(requestHeaders());
    expect(setHeadersOf((await old.next()).request_headers.response)).toEqual({ 'x-config': 'test-v1' });
    old.send({ request_body: { body: Buffer.from('{}'), end_of_stream: true } }); // in flight across the reload

    // Replace the file atomically, as editors and ConfigMaps do.
    writeFileSync(join(dir, 'next.yaml'), 'pipeline: { stages: [test-v2] }\n');
    renameSync(join(dir, 'next.yaml'), file);
    for (let i = 0; i < 50 && !gw.logs.some((l) => l['msg'] === 'config reloaded'); i++) await sleep(20);
    expect(gw.logs.some((l) => l['msg'] === 'config reloaded')).toBe(true);

    expect((await old.next()).response).toBe('request_body'); // the old stream finished normally
    const fresh = client.open();
    fresh.send(requestHeaders());
    expect(setHeadersOf((await fresh.next()).request_headers.response)).toEqual({ 'x-config': 'test-v2' });
    // The new file has no logging section: level info from now on, so new streams log no debug lines.
    const reloadedAt = gw.logs.findIndex((l) => l['msg'] === 'config reloaded');
    fresh.end();
    await fresh.status;
    await sleep(20);
    expect(gw.logs.slice(reloadedAt).filter((l) => l['level'] === 'debug')).toEqual([]);

    writeFileSync(file, 'pipeline: { stages: [test-v3] }\nrouts: []\n');
    for (let i = 0; i < 50 && !gw.logs.some((l) => l['msg'] === 'config reload rejected; keeping the running config'); i++) await sleep(20);
    const rejected = gw.logs.find((l) => l['msg'] === 'config reload rejected; keeping the running config');
    expect(rejected?.['problems']).toContain('routs: unknown key');
    const after = client.open();
    after.send(requestHeaders());
    expect(setHeadersOf((await after.next()).request_headers.response)).toEqual({ 'x-config': 'test-v2' });
    client.close();
  });
});

describe('CLI', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', join(root, 'extproc/main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 20_000 });

  it('--version prints the package version', () => {
    const r = cli('--version');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(`llm-extproc ${(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version}`);
  });

  it('--check-config accepts a good file and names each problem in a bad one', () => {
    expect(cli('--check-config', 'config/gateway.yaml').status).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'gw-cli-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'providers: { openai: { api: openai, cluster: openai } }\nmodels: { gpt-4o: { provider: openai } }\nroutes: [{ model: gpt-4o, fallback: [gpt-5o] }]\n');
    const r = cli('--check-config', bad);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('routes[0].fallback[0]: unknown model "gpt-5o"');
  });

  it('an unknown flag is a usage error, not a crash', () => {
    const r = cli('--frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('usage:');
  });

  // Starting on embedded defaults and draining on SIGTERM: test/e2e/embedded-default.test.ts.
});
