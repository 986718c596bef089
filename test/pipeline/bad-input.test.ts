/**
 * Requests the gateway cannot read (not JSON, not UTF-8, wrong content type, too large) follow
 * `pipeline.onInvalidRequest`, and stage errors follow each stage's failure policy: every case
 * answers per Envoy's protocol, logs one line with the request id, and the server keeps serving.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { connect, requestHeaders } from '../helpers/extProcClient.js';
import { startTestGateway, testStage, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway | undefined;
let client: ReturnType<typeof connect> | undefined;
afterEach(async () => {
  client?.close();
  await gw?.close(200);
});

/** A stage after parse-request that would rewrite the body: it must not run on an unread body. */
const rewriteStage: StageFactory<never> = testStage('test-rewrite', {
  requestBody: (_x, out) => out.replaceBody('{"rewritten":true}'),
});

/** Starts a gateway with `pipeline`, sends request headers then `body`, and returns the body's answer. */
async function answerToBody(pipeline: Record<string, unknown>, stages: StageFactory<never>[], body: Buffer, headers: Record<string, string> = {}) {
  gw = await startTestGateway({ pipeline }, stages);
  client = connect(gw.port);
  const s = client.open();
  s.send(requestHeaders({ 'x-request-id': 'req-bad', ...headers }));
  await s.next();
  s.send({ request_body: { body, end_of_stream: true } });
  return s.next();
}

function sendBody(policy: 'continue' | 'reject', body: Buffer, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
  return answerToBody({ onInvalidRequest: policy, stages: ['parse-request', 'test-rewrite'], ...extra }, [rewriteStage], body, headers);
}

const cases: { name: string; body: Buffer; headers?: Record<string, string>; status: string; extra?: Record<string, unknown> }[] = [
  { name: 'a body that is not JSON', body: Buffer.from('model=gpt-4o&prompt=hi'), status: 'BadRequest' },
  { name: 'invalid UTF-8', body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), status: 'BadRequest' },
  { name: 'an unknown content type', body: Buffer.from('{"model":"m"}'), headers: { 'content-type': 'text/plain' }, status: 'UnsupportedMediaType' },
  { name: 'a JSON array instead of an object', body: Buffer.from('[1,2]'), status: 'BadRequest' },
  { name: 'a body over maxInspectBytes', body: Buffer.from(JSON.stringify({ p: 'x'.repeat(2000) })), status: 'PayloadTooLarge', extra: { maxInspectBytes: 1024 } },
];

describe.each(cases)('$name', ({ body, headers, status, extra }) => {
  it('continues unchanged under onInvalidRequest: continue, and logs one line with the request id', async () => {
    const r = await sendBody('continue', body, headers, extra);
    expect(r.response).toBe('request_body');
    expect(r.request_body.response).toBeUndefined(); // the rewrite stage did not run
    const lines = gw!.logs.filter((l) => l['msg'] === 'request not inspectable');
    expect(lines).toHaveLength(1);
    expect(lines[0]!['request_id']).toBe('req-bad');
    expect(JSON.stringify(gw!.logs)).not.toContain('gpt-4o'); // no request content in logs
  });

  it('answers with a clear JSON error under onInvalidRequest: reject', async () => {
    const r = await sendBody('reject', body, headers, extra);
    expect(r.response).toBe('immediate_response');
    expect(r.immediate_response.status.code).toBe(status);
    const err = JSON.parse(r.immediate_response.body.toString()) as { error: { message: string; type: string } };
    expect(err.error.type).toBe('invalid_request_error');
    expect(err.error.message.length).toBeGreaterThan(5);
  });
});

describe('stage failures', () => {
  const throwing = (failure: 'open' | 'closed'): StageFactory<never> =>
    testStage(
      `test-throw-${failure}`,
      {
        async requestBody() {
          await Promise.resolve();
          throw new Error('backend exploded');
        },
      },
      failure,
    );

  it('fail open: logs and continues with the next stage', async () => {
    const r = await answerToBody({ stages: ['test-throw-open', 'test-rewrite'] }, [throwing('open'), rewriteStage], Buffer.from('{}'));
    expect(r.request_body.response.body_mutation.body.toString()).toBe('{"rewritten":true}');
    expect(gw!.logs.some((l) => l['msg'] === 'stage failed; failing open' && l['stage'] === 'test-throw-open')).toBe(true);
  });

  it('fail closed: answers 500 and runs no later stage', async () => {
    const r = await answerToBody({ stages: ['test-throw-closed', 'test-rewrite'] }, [throwing('closed'), rewriteStage], Buffer.from('{}'));
    expect(r.immediate_response.status.code).toBe('InternalServerError');
    expect(r.immediate_response.body.toString()).not.toContain('exploded'); // internal detail stays in the log
  });
});
