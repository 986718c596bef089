/** The request span continues the incoming trace and carries the GenAI attributes. */
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { RequestTracer } from '../../extproc/telemetry/tracing.js';
import { parseTraceparent } from '../../extproc/usage/record.js';
import { sampleRecord } from '../usage/fixtures.js';

describe('request spans', () => {
  it('are children of the traceparent span, with the request\'s times and GenAI attributes', async () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new RequestTracer(exporter, false);
    const parent = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    const r = sampleRecord({ requestedModel: 'claude-opus-4', servedModel: 'gpt-4o', errorClass: 'truncated' });
    tracer.span(r, parent, r.startedAt + 250);
    await tracer.flush();
    const [span] = exporter.getFinishedSpans();
    await tracer.close();
    expect(span!.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(span!.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(span!.name).toBe('chat claude-opus-4');
    expect(span!.duration).toEqual([0, 250_000_000]);
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'claude-opus-4', 'gen_ai.response.model': 'gpt-4o', 'gen_ai.provider.name': 'openai',
      'gen_ai.usage.input_tokens': 100, 'gen_ai.usage.output_tokens': 50, 'error.type': 'truncated',
    });
  });

  it('traceparent parsing refuses malformed and all-zero ids', () => {
    expect(parseTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01')).toBeUndefined();
    expect(parseTraceparent('garbage')).toBeUndefined();
    expect(parseTraceparent('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBeUndefined();
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')?.sampled).toBe(false);
  });
});
