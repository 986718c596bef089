/**
 * @module stages/usage
 * One exact usage record per request (extproc/usage/): tokens by kind from the provider's own
 * figures (counted with the tokenizer and marked `estimated` when it gave none), cost in integer
 * micro-dollars, latency and time to first token, and what the other stages contributed
 * (caller, route, PII counts, cache status, rate-limit decision).
 *
 * It only reads response bodies (`responseBodyAccess: 'observe'`): with
 * `pipeline.streamObserver` the chunks come from Envoy's observability-mode filter and watching a
 * stream adds no round trip per chunk; without it, it reads the main stream's body and, when the
 * response ends, sets `ai_gateway` dynamic metadata (tokens, cost, served model, cache status)
 * for the access log. Observer mode has no answer channel, so no metadata there.
 *
 * `finish` writes the record once per request (router filter: never per retry) to the log, the
 * ledger (batched, flushed on shutdown), metrics and a trace span.
 */
import { slot } from '../pipeline/exchange.js';
import type { StageFactory } from '../pipeline/stage.js';
import { describeError } from '../telemetry/logger.js';
import { assembleRecord, reportedTokens, servedOf } from '../usage/assemble.js';
import { responseUsage, type UsageCollector } from '../usage/collector.js';
import { cacheContribution } from '../usage/contributions.js';
import { usageOptionsSchema, type UsageOptions } from '../usage/options.js';
import { parseTraceparent, recordLogFields } from '../usage/record.js';
import { PriceBook, costOf } from '../usage/settle.js';
import { usageSinks } from '../usage/sinks.js';

/** Per-exchange state of the usage stage. */
interface UsageState {
  readonly collector: UsageCollector;
  /** performance.now() when the response body ended. */
  endedAt: number | undefined;
}

/** The usage stage's own per-exchange state (no other stage reads it). */
export const usageState = slot<UsageState>('usage.state');

/** The usage stage. */
export const usageStage: StageFactory<UsageOptions> = {
  name: 'usage',
  options: usageOptionsSchema,
  writes: [usageState],
  create(options, deps) {
    const sinks = usageSinks(options, deps.services, deps.log);
    const prices = new PriceBook(deps.catalog.models);
    const ctx = { prices, catalog: deps.catalog, counter: options.estimate ? sinks.counter : undefined, timeOrigin: performance.timeOrigin };
    return {
      name: 'usage',
      // Accounting must never block or fail a request.
      failure: 'open',
      responseBodyAccess: 'observe',
      responseBody(x, out, chunk) {
        let st = x.get(usageState);
        if (!st) x.set(usageState, (st = { collector: responseUsage(x), endedAt: undefined }));
        // The clock only where a time is kept: the first byte (the collector) and the end.
        const now = chunk.endOfStream || st.collector.firstByteAt === undefined ? performance.now() : undefined;
        st.collector.chunk(x, chunk, now);
        if (!chunk.endOfStream) return;
        st.endedAt = now;
        if (chunk.observed || !options.metadata) return;
        const served = servedOf(x, st.collector, ctx);
        if (served.model) out.setMetadata('ai_gateway', 'served_model', served.model);
        const cache = x.get(cacheContribution);
        if (cache) out.setMetadata('ai_gateway', 'cache_status', cache.status);
        const tokens = reportedTokens(st.collector);
        if (tokens) {
          out.setMetadata('ai_gateway', 'input_tokens', tokens.input);
          out.setMetadata('ai_gateway', 'output_tokens', tokens.output);
          out.setMetadata('ai_gateway', 'cached_input_tokens', tokens.cachedInput);
          out.setMetadata('ai_gateway', 'reasoning_tokens', tokens.reasoning);
          const price = served.model ? prices.price(served.model) : undefined;
          if (price) out.setMetadata('ai_gateway', 'cost_micros', costOf(tokens, price));
        }
      },
      async finish(x, outcome) {
        if (!x.requestHeaders) return;
        const st = x.get(usageState);
        const endedAt = st?.endedAt ?? performance.now();
        const record = await assembleRecord(x, outcome, st?.collector, endedAt, ctx);
        if (options.log) x.log.info('usage', recordLogFields(record));
        sinks.ledger?.writer.add(record);
        try {
          sinks.metrics?.record(record);
          sinks.tracer?.span(record, parseTraceparent(x.requestHeaders.get('traceparent')), Math.round(performance.timeOrigin + endedAt));
        } catch (err) {
          x.log.warn('usage telemetry failed', { error: describeError(err) });
        }
      },
    };
  },
};
