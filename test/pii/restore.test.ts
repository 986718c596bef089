import { describe, expect, it } from 'vitest';
import { PiiEngine } from '../../extproc/pii/engine.js';
import type { PiiSession } from '../../extproc/pii/session.js';

function sessionWith(...texts: string[]): PiiSession {
  const s = PiiEngine.fromOptions({}).session();
  for (const t of texts) s.rewrite(t);
  return s;
}

function stream(s: PiiSession, pieces: string[], mode: 'text' | 'json' = 'text'): string {
  const r = s.restorer(mode);
  return pieces.map((p) => r.push(p)).join('') + r.flush();
}

describe('StreamRestorer', () => {
  const s = sessionWith('mail a@x.io, b@x.io; call 415-555-0132');
  const answer = 'Write to <EMAIL_1> or <EMAIL_2>, call <PHONE_1>. Unknown <EMAIL_9>, mangled <EMAIL 1>, <EMAIL_1';
  const expected = 'Write to a@x.io or b@x.io, call 415-555-0132. Unknown <EMAIL_9>, mangled <EMAIL 1>, <EMAIL_1';

  it('whole-text restore', () => {
    expect(s.restore(answer)).toBe(expected);
  });

  it('restores types whose names hold underscores; numbers never issued and unknown types stay literal', () => {
    const c = sessionWith('card 4111 1111 1111 1111 from 10.0.0.7 and 10.0.0.8');
    const text = '<CREDIT_CARD_1> <IP_ADDRESS_2> <IP_ADDRESS_1> <CREDIT_CARD_2> <IP_ADDRESS_999999999> <SSN_1> <EMAIL_1>';
    expect(c.restore(text)).toBe('4111 1111 1111 1111 10.0.0.8 10.0.0.7 <CREDIT_CARD_2> <IP_ADDRESS_999999999> <SSN_1> <EMAIL_1>');
    expect(c.table.size).toBe(3);
  });

  it('split into two pieces at every position', () => {
    for (let i = 0; i <= answer.length; i++) {
      expect(stream(s, [answer.slice(0, i), answer.slice(i)]), String(i)).toBe(expected);
    }
  });

  it('split into three pieces at every pair of positions', () => {
    const text = 'x<EMAIL_1><PHONE_1>y';
    const want = 'xa@x.io415-555-0132y';
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        expect(stream(s, [text.slice(0, i), text.slice(i, j), text.slice(j)]), `${i},${j}`).toBe(want);
      }
    }
  });

  it('one character at a time', () => {
    expect(stream(s, [...answer])).toBe(expected);
  });

  it('holds back only a possible placeholder prefix, never more than the longest placeholder', () => {
    const r = s.restorer();
    expect(r.push('plain text with no angle')).toBe('plain text with no angle');
    expect(r.push('a < b and <EM')).toBe('a < b and ');
    expect(r.held).toBe(3);
    expect(r.push('PTY>')).toBe('<EMPTY>');
    expect(r.push('x <Foo')).toBe('x <Foo');
    expect(r.push('<PHONE_1')).toBe('');
    expect(r.held).toBeLessThan('<PHONE_1>'.length);
    expect(r.push('>!')).toBe('415-555-0132!');
    expect(r.push('end <')).toBe('end ');
    expect(r.flush()).toBe('<');
  });

  it('passes everything through while nothing was issued', () => {
    const empty = sessionWith('nothing here');
    const r = empty.restorer();
    expect(r.push('<EMAIL_')).toBe('<EMAIL_');
    expect(r.held).toBe(0);
  });

  it('many placeholders, more than nine of a type', () => {
    const emails = Array.from({ length: 25 }, (_, i) => `u${i}@x.io`);
    const t = sessionWith(emails.join(' '));
    const answer2 = Array.from({ length: 25 }, (_, i) => `<EMAIL_${i + 1}>`).join(',');
    const want = emails.join(',');
    for (let i = 0; i <= answer2.length; i++) {
      expect(stream(t, [answer2.slice(0, i), answer2.slice(i)]), String(i)).toBe(want);
    }
  });

  it('json mode escapes restored values for a JSON string, at every split', () => {
    const t = PiiEngine.fromOptions({ custom: [{ name: 'QUOTE', pattern: 'say "[a-z]+"\\\\?' }] }).session();
    t.rewrite('we say "hello"\\ daily');
    const args = '{"text":"<QUOTE_1> ok"}';
    const want = JSON.stringify({ text: 'say "hello"\\ ok' });
    for (let i = 0; i <= args.length; i++) {
      const out = stream(t, [args.slice(0, i), args.slice(i)], 'json');
      expect(out, String(i)).toBe(want);
      expect(JSON.parse(out)).toEqual({ text: 'say "hello"\\ ok' });
    }
    expect(t.restore(args, 'json')).toBe(want);
  });
});
