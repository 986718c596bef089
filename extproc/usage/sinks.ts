/**
 * @module usage/sinks
 * Where a finished record goes besides the log line: the ledger (store + batched writer), the
 * metrics and the trace span, each a shared service (`deps.services.shared`) so a config reload
 * with the same settings keeps the same connection, Prometheus port and queue, and shutdown
 * closes them after the last `finish` hook: the ledger's close flushes every admitted record.
 */
import type { Services } from '../pipeline/services.js';
import { openStore, type Store, type StoreConfig } from '../store/index.js';
import { GatewayMetrics, type MetricsOptions } from '../telemetry/metrics.js';
import { createRequestTracer, type RequestTracer } from '../telemetry/tracing.js';
import type { Logger } from '../telemetry/logger.js';
import { describeError } from '../telemetry/logger.js';
import { TokenCounter } from '../tokens/index.js';
import { LedgerWriter } from './ledger.js';
import type { LedgerOptions, UsageOptions } from './options.js';

/** The ledger service: its writer and the store it writes to (opened in the background). */
export interface LedgerService {
  readonly writer: LedgerWriter;
  readonly store: Promise<Store>;
}

/** Opens (and migrates) the store, and a writer that waits for it. */
export function createLedgerService(options: LedgerOptions, log: Logger): LedgerService {
  const config: StoreConfig = options.store.kind === 'embedded'
    ? { kind: 'embedded', dataDir: options.store.dataDir, ...(options.store.poolSize ? { poolSize: options.store.poolSize } : {}) }
    : { kind: 'postgres', url: options.store.url, ...(options.store.poolSize ? { poolSize: options.store.poolSize } : {}) };
  const store = (async () => {
    const s = await openStore(config, { onEvent: (e) => log.warn('usage ledger store event', { event: e.event, message: e.message ?? null }) });
    try {
      await s.migrate();
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  })();
  store.catch((err: unknown) => log.error('usage ledger store unavailable', { kind: config.kind, error: describeError(err) }));
  const writer = new LedgerWriter(
    store.then((s) => s.pool),
    { batchSize: options.batchSize, flushMs: options.flushMs, maxQueue: options.maxQueue, log },
  );
  return { writer, store };
}

/** Flushes the writer, then closes the store. */
export async function closeLedgerService(service: LedgerService): Promise<void> {
  await service.writer.close();
  const s = await service.store.catch(() => undefined);
  await s?.close();
}

/** The usage stage's services. */
export interface UsageSinks {
  readonly ledger: LedgerService | undefined;
  readonly metrics: GatewayMetrics | undefined;
  readonly tracer: RequestTracer | undefined;
  readonly counter: TokenCounter;
}

export function usageSinks(options: UsageOptions, services: Services, log: Logger): UsageSinks {
  const ledgerOptions = options.ledger;
  const ledger = ledgerOptions === false ? undefined : services.shared('usage-ledger', ledgerOptions, () => createLedgerService(ledgerOptions, log), closeLedgerService);
  const m: MetricsOptions = { prometheus: options.metrics.prometheus, otlp: options.metrics.otlp };
  const metrics = m.prometheus || m.otlp ? services.shared('usage-metrics', m, () => new GatewayMetrics(m, log), (g) => g.close()) : undefined;
  const tracing = options.tracing;
  const tracer = tracing.otlp ? services.shared('usage-tracer', tracing, () => createRequestTracer(tracing)!, (t) => t.close()) : undefined;
  const counter = services.shared('usage-token-counter', {}, () => new TokenCounter(), (c) => c.close());
  return { ledger, metrics, tracer, counter };
}
