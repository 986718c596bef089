/**
 * @module usage/sinks
 * Where a finished record goes besides the log line: the ledger (store + batched writer), the
 * metrics and the trace span, each a shared service (`deps.services.shared`) so a config reload
 * with the same settings keeps the same connection, Prometheus port and queue, and shutdown
 * closes them after the last `finish` hook: the ledger's close flushes every admitted record.
 * Each record a ledger admits is also passed to `onLedgerRecord` listeners (the admin page's
 * live counts).
 */
import type { Services } from '../pipeline/services.js';
import { openStore, type Store, type StoreConfig } from '../store/index.js';
import { GatewayMetrics, type MetricsOptions } from '../telemetry/metrics.js';
import { createRequestTracer, type RequestTracer } from '../telemetry/tracing.js';
import type { Logger } from '../telemetry/logger.js';
import { describeError } from '../telemetry/logger.js';
import { sharedTokenCounter, type TokenCounter } from '../tokens/index.js';
import { LedgerWriter } from './ledger.js';
import type { LedgerOptions, UsageOptions } from './options.js';
import type { UsageRecord } from './record.js';

/** The ledger service: its writer and the store it writes to (opened in the background). */
export interface LedgerService {
  readonly writer: LedgerWriter;
  readonly store: Promise<Store>;
  /** The options it was opened with (how a reader such as the admin page finds its gateway's ledger). */
  readonly options: LedgerOptions;
}

/** Called with each record a ledger admitted, and that ledger. */
export type LedgerRecordListener = (record: UsageRecord, ledger: LedgerService) => void;
const recordListeners = new Set<LedgerRecordListener>();
const liveLedgers = new Set<LedgerService>();

/**
 * Read-only views (the admin page) follow the records a ledger admits without the usage stage
 * knowing about them. Returns the unsubscribe. A listener that throws is ignored.
 */
export function onLedgerRecord(listener: LedgerRecordListener): () => void {
  recordListeners.add(listener);
  return () => void recordListeners.delete(listener);
}

/** The ledger services open in this process. */
export function openLedgers(): readonly LedgerService[] {
  return [...liveLedgers];
}

/** A writer that tells the listeners about each record it admits. */
class TappedLedgerWriter extends LedgerWriter {
  service: LedgerService | undefined;
  override add(record: UsageRecord): boolean {
    const admitted = super.add(record);
    if (admitted && this.service && recordListeners.size > 0) {
      for (const l of recordListeners) {
        try {
          l(record, this.service);
        } catch {
          // A view must never fail accounting.
        }
      }
    }
    return admitted;
  }
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
  const writer = new TappedLedgerWriter(
    store.then((s) => s.pool),
    { batchSize: options.batchSize, flushMs: options.flushMs, maxQueue: options.maxQueue, log },
  );
  const service: LedgerService = { writer, store, options };
  writer.service = service;
  liveLedgers.add(service);
  return service;
}

/** Flushes the writer, then closes the store. */
export async function closeLedgerService(service: LedgerService): Promise<void> {
  liveLedgers.delete(service);
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
  const counter = sharedTokenCounter(services);
  return { ledger, metrics, tracer, counter };
}
