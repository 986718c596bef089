/**
 * The in-process seam for stage tests: runs a pipeline (or one stage) against a scripted
 * exchange, phase by phase as the adapter would, without gRPC. The adapter's own message-level
 * behaviour stays covered by test/server; this is for what a stage decides.
 */
import { renderClientError } from '../../extproc/errors.js';
import { StreamExchange, type Outcome } from '../../extproc/pipeline/exchange.js';
import { HeaderView } from '../../extproc/pipeline/headers.js';
import type { PhaseOutput } from '../../extproc/pipeline/output.js';
import { Pipeline, type PipelineOptions } from '../../extproc/pipeline/pipeline.js';
import type { FilterRole, Stage } from '../../extproc/pipeline/stage.js';
import { outcomeOf } from '../../extproc/server/outcome.js';
import { createLogger, type LogSink } from '../../extproc/telemetry/logger.js';

/** What the scripted exchange carries. */
export interface Script {
  role?: FilterRole;
  requestHeaders?: Record<string, string>;
  /** An object is sent as JSON. */
  requestBody?: string | Buffer | object;
  responseHeaders?: Record<string, string>;
  /** Response chunks in order; the last one is end_of_stream. */
  responseChunks?: (string | Buffer)[];
  /** Forwarded dynamic metadata (namespace → object). */
  metadata?: Record<string, unknown>;
  attributes?: Record<string, unknown>;
  /** How the stream ends (default: completed). */
  closeReason?: 'completed' | 'cancelled' | 'shutdown';
}

/** What the run produced. */
export interface Run {
  readonly x: StreamExchange;
  readonly requestHeaders: PhaseOutput | undefined;
  readonly requestBody: PhaseOutput | undefined;
  readonly responseHeaders: PhaseOutput | undefined;
  readonly responseBody: PhaseOutput[];
  readonly outcome: Outcome;
  /** The immediate answer, if a phase gave one. */
  readonly reply: PhaseOutput['reply'];
  readonly logs: Record<string, unknown>[];
}

function headerView(h: Record<string, string>): HeaderView {
  return new HeaderView(Object.entries(h).map(([key, value]) => ({ key: key.toLowerCase(), raw_value: Buffer.from(value) })));
}

/** A pipeline of `stages` with the gateway's own error renderer. */
export function pipelineOf(stages: Stage[], options: Partial<PipelineOptions> = {}): Pipeline {
  return new Pipeline(stages, { onInvalidRequest: 'continue', renderError: renderClientError, ...options });
}

/** Runs `pipeline` over `script`, stopping at the first immediate answer like Envoy would. */
export async function runScript(pipeline: Pipeline, script: Script): Promise<Run> {
  const logs: Record<string, unknown>[] = [];
  const sink: LogSink = (line) => logs.push(JSON.parse(line) as Record<string, unknown>);
  const x = new StreamExchange(createLogger('debug', sink), 8 * 1024 * 1024, script.role ?? pipeline.role);
  x.requestHeaders = headerView({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', ...script.requestHeaders });
  if (script.metadata) {
    const md = script.metadata;
    x.setMetadataSource(() => md);
  }
  if (script.attributes) Object.assign(x.attributes, script.attributes);
  const result: { -readonly [K in keyof Run]?: Run[K] } = { x, responseBody: [], logs };
  const stop = (o: PhaseOutput): boolean => {
    if (o.reply) {
      result.reply = o.reply;
      x.answeredImmediately = true;
      x.immediateStatus = o.reply.status;
      return true;
    }
    return false;
  };
  run: {
    result.requestHeaders = await pipeline.run('requestHeaders', x);
    if (stop(result.requestHeaders)) break run;
    if (script.requestBody !== undefined) {
      const b = script.requestBody;
      x.requestBody = Buffer.isBuffer(b) ? b : Buffer.from(typeof b === 'string' ? b : JSON.stringify(b));
      result.requestBody = await pipeline.run('requestBody', x, { bytes: x.requestBody, endOfStream: true });
      if (stop(result.requestBody)) break run;
    }
    if (script.responseHeaders) {
      x.responseHeaders = headerView({ ':status': '200', ...script.responseHeaders });
      result.responseHeaders = await pipeline.run('responseHeaders', x);
      if (stop(result.responseHeaders)) break run;
      const chunks = script.responseChunks ?? [];
      for (let i = 0; i < chunks.length; i++) {
        const c = chunks[i]!;
        const endOfStream = i === chunks.length - 1;
        if (endOfStream) x.responseComplete = true;
        const out = await pipeline.run('responseBody', x, { bytes: Buffer.isBuffer(c) ? c : Buffer.from(c), endOfStream });
        result.responseBody!.push(out);
        if (stop(out)) break run;
      }
    }
  }
  const reason = script.closeReason ?? 'completed';
  x.closeReason = reason;
  x.abortSignal(reason);
  result.outcome = outcomeOf(x, reason, pipeline.needs.responseHeaders);
  await pipeline.finish(x, result.outcome);
  return result as Run;
}

/** A stage with a name, failure policy and handlers, for tests. */
export function stage(name: string, handlers: Omit<Stage, 'name' | 'failure'> & { failure?: Stage['failure'] }): Stage {
  return { failure: 'open', ...handlers, name };
}
