/**
 * Shared services outlive config reloads; slots have one writer that comes before its readers;
 * every stage entry accepts `failure` and `timeoutMs` (issue 6 points 7 and 8).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseConfig } from '../../extproc/config/load.js';
import { slot } from '../../extproc/pipeline/exchange.js';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { buildPipelines, builtinStages, extendRegistry, stageCheck } from '../../extproc/stages/registry.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A fake client whose opens and closes are counted, as a Redis or pg client would be. */
const clients = { opened: 0, closed: 0, urls: [] as string[] };
const usesClient: StageFactory<never> = {
  name: 'test-client',
  options: z.object({ url: z.string() }).strict() as never,
  create: (options: { url: string }, deps) => {
    const client = deps.services.shared(
      'test-client',
      { url: options.url },
      () => {
        clients.opened++;
        clients.urls.push(options.url);
        return { url: options.url, closed: false };
      },
      (c) => {
        c.closed = true;
        clients.closed++;
      },
    );
    return { name: 'test-client', failure: 'open', requestHeaders: (_x, out) => out.setHeader('x-client', client.url) };
  },
};

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close(100);
  gw = undefined;
});

describe('services outlive config reloads', () => {
  it('is created once across reloads with the same settings, replaced when they change, closed on shutdown', async () => {
    clients.opened = clients.closed = 0;
    const config = (url: string, level = 'info') => ({ server: { shutdownGraceMs: 50 }, logging: { level }, pipeline: { stages: [{ name: 'test-client', url }] } });
    gw = await startTestGateway(config('redis://a'), [usesClient]);
    const registry = extendRegistry(builtinStages, [usesClient]);
    const reload = (c: Record<string, unknown>) => gw!.reload(parseConfig({ ...c, server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 50 } }, [stageCheck(registry)]));
    reload(config('redis://a', 'debug'));
    reload(config('redis://a', 'warn'));
    expect(clients).toMatchObject({ opened: 1, closed: 0 });
    reload(config('redis://b'));
    expect(clients.opened).toBe(2);
    await sleep(120); // the replaced client stays open for streams in flight, then closes
    expect(clients.closed).toBe(1);
    await gw.close(100);
    gw = undefined;
    expect(clients.closed).toBe(2);
  });

  it('stages get the validated catalog', () => {
    let seen: unknown;
    const catalogReader: StageFactory<never> = { name: 'test-catalog', create: (_o, deps) => ((seen = deps.catalog.models), { name: 'test-catalog', failure: 'open' }) };
    const registry = extendRegistry(builtinStages, [catalogReader]);
    const config = parseConfig(
      { providers: { openai: { api: 'openai', cluster: 'openai' } }, models: { 'gpt-4o': { provider: 'openai' } }, pipeline: { stages: ['test-catalog'] } },
      [stageCheck(registry)],
    );
    buildPipelines(config, registry, { log: { child: () => undefined } as never, services: { shared: (_k, _c, create) => create() } });
    expect(Object.keys(seen as object)).toEqual(['gpt-4o']);
  });
});

describe('slots have owners', () => {
  const caller = slot<string>('caller');
  const writer = (name: string): StageFactory<never> => ({ name, writes: [caller], create: () => ({ name, failure: 'open' }) });
  const reader: StageFactory<never> = { name: 'test-reader', reads: [caller], create: () => ({ name: 'test-reader', failure: 'open' }) };
  const registry = extendRegistry(builtinStages, [writer('test-identity'), writer('test-impostor'), reader]);
  const check = (stages: unknown[]) => {
    try {
      parseConfig({ pipeline: { stages } }, [stageCheck(registry)]);
      return [];
    } catch (err) {
      return (err as { problems: string[] }).problems;
    }
  };

  it('a second writer is a config error naming both stages', () => {
    expect(check(['test-identity', 'test-impostor', 'test-reader'])).toEqual([
      'pipeline.stages[1]: stage "test-impostor" writes slot "caller", which stage "test-identity" (pipeline.stages[0]) already writes',
    ]);
  });

  it('a reader before its writer, or without one, is a config error naming both', () => {
    expect(check(['test-reader', 'test-identity'])).toEqual([
      'pipeline.stages[0]: stage "test-reader" reads slot "caller" written by stage "test-identity", which must come before it (it is pipeline.stages[1])',
    ]);
    expect(check(['test-reader'])).toEqual(['pipeline.stages[0]: stage "test-reader" needs slot "caller", which no configured stage writes']);
    expect(check(['test-identity', 'test-reader'])).toEqual([]);
  });

  it('every entry takes failure and timeoutMs; bad values name the key', () => {
    expect(check([{ name: 'test-identity', failure: 'open', timeoutMs: 50 }])).toEqual([]);
    expect(check([{ name: 'test-identity', failure: 'maybe', timeoutMs: -1 }])).toEqual([
      'pipeline.stages[0].failure: must be "open" or "closed"',
      'pipeline.stages[0].timeoutMs: must be a positive whole number of milliseconds',
    ]);
  });

  it('failure and timeoutMs from config override what the stage declared', () => {
    const config = parseConfig({ pipeline: { stages: [{ name: 'test-identity', failure: 'closed', timeoutMs: 75 }] } }, [stageCheck(registry)]);
    const pipelines = buildPipelines(config, registry, { log: {} as never, services: { shared: (_k, _c, create) => create() } });
    expect(pipelines.router.stages[0]).toMatchObject({ name: 'test-identity', failure: 'closed', timeoutMs: 75 });
  });
});
