/**
 * End-to-end wiring: the gateway (real gRPC server) + the Envoy stand-in driven by the shipped
 * envoy/envoy.yaml + fake providers, and a fetch that records the exact bytes (and arrival
 * times) an SDK client receives.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { startStandin, type Standin } from '../envoy-standin/standin.js';
import { startFakeProvider, type FakeProvider } from '../fakes/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { StageFactory } from '../../extproc/pipeline/stage.js';

export const envoyYamlPath = join(import.meta.dirname, '../../envoy/envoy.yaml');

/** Bytes a client received, chunk by chunk, with arrival times (performance.now()). */
export interface ReceivedBody {
  chunks: { at: number; bytes: Uint8Array }[];
  done: Promise<void>;
}

/** A fetch for SDK clients that tees every response body into `received`. */
export function recordingFetch(received: ReceivedBody[]): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    if (!res.body) return res;
    const [forClient, forRecord] = res.body.tee();
    const record: ReceivedBody = { chunks: [], done: Promise.resolve() };
    record.done = (async () => {
      const reader = forRecord.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        record.chunks.push({ at: performance.now(), bytes: value });
      }
    })();
    received.push(record);
    return new Response(forClient, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** Concatenated bytes. */
export function bytesOf(chunks: readonly (Uint8Array | { bytes: Uint8Array })[]): Buffer {
  return Buffer.concat(chunks.map((c) => ('bytes' in c ? c.bytes : c)));
}

/** A running gateway + stand-in + one fake provider as the whole fallback chain. */
export interface E2E {
  gateway: TestGateway;
  envoy: Standin;
  provider: FakeProvider;
  close(): Promise<void>;
}

/** The shipped envoy/envoy.yaml as a document a test may change before starting the stand-in. */
export function shippedBootstrap(): Record<string, any> {
  return YAML.parse(fs.readFileSync(envoyYamlPath, 'utf8')) as Record<string, any>;
}

/** Every provider-facing cluster of `bootstrap` (all but ext_proc), each endpoint of each priority pointed at `url`. */
export function allUpstreamsTo(bootstrap: Record<string, any>, url: string): Record<string, string[][]> {
  const out: Record<string, string[][]> = {};
  for (const c of bootstrap.static_resources.clusters as Record<string, any>[]) {
    if (c.name === 'ext_proc') continue;
    const priorities = (c.load_assignment?.endpoints ?? []) as { lb_endpoints?: unknown[] }[];
    out[c.name as string] = priorities.map((p) => (p.lb_endpoints ?? []).map(() => url));
  }
  return out;
}

/**
 * Starts the three pieces; the provider serves every endpoint of every upstream cluster of the
 * shipped envoy.yaml (or of `bootstrap`), whatever the chains' shapes.
 */
export async function startE2E(
  kind: 'openai' | 'anthropic' | 'mistral',
  gatewayConfig: Record<string, unknown> = {},
  stages: StageFactory<never>[] = [],
  seed = 7,
  bootstrap: Record<string, any> = shippedBootstrap(),
): Promise<E2E> {
  const provider = await startFakeProvider({ kind });
  const gateway = await startTestGateway(gatewayConfig, stages);
  const envoy = await startStandin({ bootstrap, extProcAddress: `127.0.0.1:${gateway.port}`, clusterEndpoints: allUpstreamsTo(bootstrap, provider.url), seed });
  return {
    gateway,
    envoy,
    provider,
    async close() {
      await envoy.close();
      await gateway.close(200);
      await provider.close();
    },
  };
}
