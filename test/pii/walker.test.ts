import { describe, expect, it } from 'vitest';
import { PiiEngine } from '../../extproc/pii/engine.js';
import { rewriteRequest, rewriteRequestAsync } from '../../extproc/pii/walker.js';

const planted = ['alice@corp.io', '415-555-0132', '4111 1111 1111 1111', 'bob@corp.io', 'carol@corp.io', 'he said "hi" at dave@corp.io'];

function openaiBody(): Record<string, unknown> {
  return {
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: 'Support bot. Escalate to alice@corp.io.' },
      { role: 'user', name: 'bob@corp.io', content: [
        { type: 'text', text: 'Call me at 415-555-0132' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
        { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
      ] },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'charge', arguments: '{"card":"4111 1111 1111 1111","note":"he said \\"hi\\" at dave@corp.io","n":3,"tags":["carol@corp.io"]}' } },
          { id: 'c2', type: 'function', function: { name: 'noop', arguments: '{ "x": 1 }' } },
          { id: 'c3', type: 'function', function: { name: 'raw', arguments: 'not json carol@corp.io' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'charged card for carol@corp.io' },
    ],
    tools: [{ type: 'function', function: { name: 'charge', description: 'mail alice@corp.io', parameters: {} } }],
  };
}

function anthropicBody(): Record<string, unknown> {
  return {
    model: 'claude-sonnet-4',
    system: [{ type: 'text', text: 'Escalate to alice@corp.io' }],
    messages: [
      { role: 'user', content: 'My number is 415-555-0132' },
      { role: 'assistant', content: [
        { type: 'thinking', thinking: 'user alice@corp.io', signature: 'sig' },
        { type: 'text', text: 'Checking bob@corp.io' },
        { type: 'tool_use', id: 't1', name: 'charge', input: { card: '4111 1111 1111 1111', nested: { who: ['carol@corp.io', 7] } } },
      ] },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'ok carol@corp.io' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] },
        { type: 'tool_result', tool_use_id: 't2', content: 'string result bob@corp.io' },
        { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'doc for alice@corp.io' } },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
      ] },
    ],
  };
}

describe('request walker: OpenAI', () => {
  it('rewrites every text-bearing part, keeps tool arguments valid JSON, leaves the input untouched', () => {
    const body = openaiBody();
    const before = JSON.stringify(body);
    const session = PiiEngine.fromOptions({}).session();
    const r = rewriteRequest(body, 'openai', session);
    expect(JSON.stringify(body)).toBe(before);
    const out = r.body as any;
    expect(out.messages[0].content).toBe('Support bot. Escalate to <EMAIL_1>.');
    expect(out.messages[1].name).toBe('EMAIL_2');
    expect(out.messages[1].content[0].text).toBe('Call me at <PHONE_1>');
    expect(out.messages[1].content[1]).toBe((body as any).messages[1].content[1]);
    const args = JSON.parse(out.messages[2].tool_calls[0].function.arguments);
    expect(args).toEqual({ card: '<CREDIT_CARD_1>', note: 'he said "hi" at <EMAIL_3>', n: 3, tags: ['<EMAIL_4>'] });
    expect(out.messages[2].tool_calls[1].function.arguments).toBe('{ "x": 1 }'); // unchanged: not re-serialised
    expect(out.messages[2].tool_calls[2].function.arguments).toBe('not json <EMAIL_4>');
    expect(out.messages[3].content).toBe('charged card for <EMAIL_4>');
    expect(out.tools).toBe((body as any).tools); // tool definitions are not user data
    expect(r.media).toBe(2);
    expect(r.changed).toBe(true);
    expect(Object.fromEntries(r.counts)).toEqual({ EMAIL: 6, PHONE: 1, CREDIT_CARD: 1 });
    const wire = JSON.stringify(out);
    for (const v of ['alice@corp.io', '415-555-0132', '4111 1111 1111 1111', 'dave@corp.io', 'carol@corp.io']) {
      if (v === 'alice@corp.io') continue; // still in the untouched tool description
      expect(wire).not.toContain(v);
    }
    // Restoring the tool arguments in JSON mode gives back the original object.
    expect(JSON.parse(session.restore(out.messages[2].tool_calls[0].function.arguments, 'json'))).toEqual({
      card: '4111 1111 1111 1111',
      note: 'he said "hi" at dave@corp.io',
      n: 3,
      tags: ['carol@corp.io'],
    });
  });

  it('reports blocked types only', () => {
    const session = PiiEngine.fromOptions({ entities: { CREDIT_CARD: 'block' } }).session();
    const r = rewriteRequest(openaiBody(), 'openai', session);
    expect(r.blocked).toEqual(['CREDIT_CARD']);
  });

  it('a body with nothing to change', () => {
    const r = rewriteRequest({ model: 'm', messages: [{ role: 'user', content: 'hello' }] }, 'openai', PiiEngine.fromOptions({}).session());
    expect(r.changed).toBe(false);
    expect(r.counts.size).toBe(0);
    expect(r.texts).toBe(1);
  });
});

describe('request walker: Anthropic', () => {
  it('system blocks, string content, text, tool_use input, tool_result (string and blocks), text documents', () => {
    const body = anthropicBody();
    const before = JSON.stringify(body);
    const r = rewriteRequest(body, 'anthropic', PiiEngine.fromOptions({}).session());
    expect(JSON.stringify(body)).toBe(before);
    const out = r.body as any;
    expect(out.system[0].text).toBe('Escalate to <EMAIL_1>');
    expect(out.messages[0].content).toBe('My number is <PHONE_1>');
    expect(out.messages[1].content[0]).toBe((body as any).messages[1].content[0]); // signed thinking untouched
    expect(out.messages[1].content[1].text).toBe('Checking <EMAIL_2>');
    expect(out.messages[1].content[2].input).toEqual({ card: '<CREDIT_CARD_1>', nested: { who: ['<EMAIL_3>', 7] } });
    expect(out.messages[2].content[0].content[0].text).toBe('ok <EMAIL_3>');
    expect(out.messages[2].content[1].content).toBe('string result <EMAIL_2>');
    expect(out.messages[2].content[2].source.data).toBe('doc for <EMAIL_1>');
    expect(r.media).toBe(2);
    expect(r.skipped).toBe(1);
    const wire = JSON.stringify({ ...out, messages: out.messages.map((m: any, i: number) => (i === 1 ? { ...m, content: m.content.slice(1) } : m)) });
    for (const v of planted.slice(0, 5)) expect(wire).not.toContain(v);
  });

  it('string system prompt', () => {
    const r = rewriteRequest({ system: 'root is alice@corp.io', messages: [] }, 'anthropic', PiiEngine.fromOptions({}).session());
    expect((r.body as any).system).toBe('root is <EMAIL_1>');
  });
});

describe('walker: placeholder literals anywhere in the request are reserved first', () => {
  it('a literal in a later message does not collide with a number issued for an earlier one', () => {
    const session = PiiEngine.fromOptions({}).session();
    const r = rewriteRequest(
      { messages: [{ role: 'user', content: 'I am me@corp.io' }, { role: 'user', content: 'The template says <EMAIL_1>' }] },
      'openai',
      session,
    );
    const out = r.body as any;
    expect(out.messages[0].content).toBe('I am <EMAIL_2>');
    expect(out.messages[1].content).toBe('The template says <EMAIL_1>');
    expect(session.restore('<EMAIL_1> / <EMAIL_2>')).toBe('<EMAIL_1> / me@corp.io');
  });
});

describe('async walker', () => {
  it('gives the same result as the sync walker on a multi-megabyte body', async () => {
    const big = Array.from({ length: 3000 }, (_, i) => `line ${i} for user${i % 50}@corp.io with text `.padEnd(700, 'z ')).join('\n');
    const mk = () => ({ messages: [{ role: 'user', content: big }, { role: 'user', content: 'small a@x.io' }] });
    const engine = PiiEngine.fromOptions({});
    const a = rewriteRequest(mk(), 'openai', engine.session());
    const b = await rewriteRequestAsync(mk(), 'openai', engine.session());
    expect(JSON.stringify(b.body)).toBe(JSON.stringify(a.body));
    expect(Object.fromEntries(b.counts)).toEqual({ EMAIL: 3001 });
  });

  it('lets other work run while it processes', async () => {
    const big = 'x y z '.repeat(200_000) + 'a@x.io';
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    await rewriteRequestAsync({ messages: [{ role: 'user', content: big }] }, 'openai', PiiEngine.fromOptions({}).session());
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
  });
});
