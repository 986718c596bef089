import { describe, expect, it } from 'vitest';
import { PiiEngine } from '../../extproc/pii/engine.js';
import { windowChars } from '../../extproc/pii/session.js';

describe('PiiSession actions', () => {
  it('tokenizes by default: numbered per type, same value same placeholder', () => {
    const s = PiiEngine.fromOptions({}).session();
    const out = s.rewrite('a@x.io, b@x.io, a@x.io and 415-555-0132');
    expect(out).toBe('<EMAIL_1>, <EMAIL_2>, <EMAIL_1> and <PHONE_1>');
    expect(s.rewrite('again a@x.io')).toBe('again <EMAIL_1>');
    expect(Object.fromEntries(s.counts)).toEqual({ EMAIL: 4, PHONE: 1 });
    expect(s.restore(out)).toBe('a@x.io, b@x.io, a@x.io and 415-555-0132');
  });

  it('a value that appears many times gets one placeholder, restored everywhere', () => {
    const s = PiiEngine.fromOptions({}).session();
    const text = Array.from({ length: 500 }, (_, i) => `row ${i}: ops@corp.io`).join('\n');
    const out = s.rewrite(text);
    expect(out).not.toContain('ops@corp.io');
    expect(out.split('<EMAIL_1>')).toHaveLength(501);
    expect(out).not.toContain('<EMAIL_2>');
    expect(s.restore(out)).toBe(text);
  });

  it('redact uses the type placeholder and is never restored', () => {
    const s = PiiEngine.fromOptions({ entities: { EMAIL: 'redact' } }).session();
    const out = s.rewrite('mail a@x.io now');
    expect(out).toBe('mail <EMAIL> now');
    expect(s.restore(out)).toBe('mail <EMAIL> now');
    expect(s.restore('<EMAIL_1>')).toBe('<EMAIL_1>');
  });

  it('block reports the types found, never values', () => {
    const s = PiiEngine.fromOptions({ entities: { CREDIT_CARD: 'block', SSN: 'block' } }).session();
    const out = s.rewrite('pay with 4111 1111 1111 1111, mail a@x.io');
    expect([...s.blocked]).toEqual(['CREDIT_CARD']);
    expect(out).not.toContain('4111');
    expect(JSON.stringify([...s.blocked])).not.toContain('4111');
    expect(out).toContain('<EMAIL_1>');
  });

  it('allow leaves the type alone', () => {
    const s = PiiEngine.fromOptions({ entities: { IP_ADDRESS: 'allow' } }).session();
    expect(s.rewrite('host 10.0.0.1 mail a@x.io')).toBe('host 10.0.0.1 mail <EMAIL_1>');
  });

  it('allow-listed values are never touched, others of the type are', () => {
    const s = PiiEngine.fromOptions({ allowList: ['USER@example.com'] }).session();
    expect(s.rewrite('see user@example.com and bob@example.com')).toBe('see user@example.com and <EMAIL_1>');
    const d = PiiEngine.fromOptions({}).session();
    expect(d.rewrite('see user@example.com')).toBe('see <EMAIL_1>');
  });

  it('custom regexes with their own action', () => {
    const s = PiiEngine.fromOptions({
      custom: [
        { name: 'EMPLOYEE_ID', pattern: 'EMP-\\d{6}' },
        { name: 'PROJECT', pattern: 'proj-[a-z]+', flags: 'i', action: 'redact' },
      ],
    }).session();
    expect(s.rewrite('EMP-123456 on PROJ-Falcon, EMP-123456')).toBe('<EMPLOYEE_ID_1> on <PROJECT>, <EMPLOYEE_ID_1>');
  });

  it('rules per route and caller override actions', () => {
    const engine = PiiEngine.fromOptions({
      entities: { EMAIL: 'redact' },
      rules: [
        { match: { route: 'internal' }, entities: { EMAIL: 'allow' } },
        { match: { caller: ['team-a', 'team-b'] }, entities: { PHONE: 'block' } },
        { match: { route: 'internal', caller: 'team-b' }, entities: { EMAIL: 'tokenize' } },
      ],
    });
    const text = 'a@x.io 415-555-0132';
    expect(engine.session().rewrite(text)).toBe('<EMAIL> <PHONE_1>');
    expect(engine.session({ route: 'internal' }).rewrite(text)).toBe('a@x.io <PHONE_1>');
    const b = engine.session({ route: 'other', caller: 'team-a' });
    b.rewrite(text);
    expect([...b.blocked]).toEqual(['PHONE']);
    expect(engine.session({ route: 'internal', caller: 'team-b' }).rewrite('a@x.io')).toBe('<EMAIL_1>');
  });
});

describe('placeholder-looking text already in the prompt', () => {
  it('numbering skips literals reserved before rewriting', () => {
    const s = PiiEngine.fromOptions({}).session();
    const user = 'Template uses <EMAIL_1> and <EMAIL_2>; my address is me@corp.io';
    s.reserve(user);
    const out = s.rewrite(user);
    expect(out).toBe('Template uses <EMAIL_1> and <EMAIL_2>; my address is <EMAIL_3>');
    // The model echoes all three: only the issued one becomes the value.
    expect(s.restore('<EMAIL_1> <EMAIL_2> <EMAIL_3>')).toBe('<EMAIL_1> <EMAIL_2> me@corp.io');
  });

  it('a literal seen after its number was issued withdraws it: never restored into a value', () => {
    const s = PiiEngine.fromOptions({}).session();
    expect(s.rewrite('me@corp.io')).toBe('<EMAIL_1>');
    s.rewrite('literal <EMAIL_1> here');
    expect(s.restore('<EMAIL_1>')).toBe('<EMAIL_1>');
    // A new occurrence of the value gets a fresh, restorable number.
    expect(s.rewrite('me@corp.io')).toBe('<EMAIL_2>');
    expect(s.restore('<EMAIL_2>')).toBe('me@corp.io');
  });
});

describe('large texts', () => {
  it('windowed scanning finds entities across window edges, sync and async alike', async () => {
    const engine = PiiEngine.fromOptions({});
    const filler = 'lorem ipsum dolor sit amet '.repeat(400); // 10.8 KB
    const parts: string[] = [];
    for (let i = 0; i < 200; i++) parts.push(filler, `user${i}@corp.io 4111 1111 1111 1111 `);
    const text = parts.join(''); // ~2.2 MB, many window edges
    const a = engine.session();
    const b = engine.session();
    const sync = a.rewrite(text);
    const async = await b.rewriteAsync(text);
    expect(async).toBe(sync);
    expect(a.counts.get('EMAIL')).toBe(200);
    expect(a.counts.get('CREDIT_CARD')).toBe(200);
    expect(sync).not.toMatch(/user\d+@corp\.io/);
    expect(a.restore(sync)).toBe(text);
  });

  it('an entity straddling a window edge is replaced whole (windows of the async scan; the sync scan has none)', async () => {
    for (const shift of [-10, -3, -1, 0, 1, 5]) {
      const text = 'x'.repeat(windowChars * 2 + shift - 6) + ' ' + 'edge@corp.io tail';
      const out = await PiiEngine.fromOptions({}).session().rewriteAsync(text);
      expect(out.endsWith(' <EMAIL_1> tail'), String(shift)).toBe(true);
      expect(PiiEngine.fromOptions({}).session().rewrite(text)).toBe(out);
    }
  });
});

describe('response scanning', () => {
  it('counts entities by type without changing anything', () => {
    const s = PiiEngine.fromOptions({}).session();
    expect(Object.fromEntries(s.countEntities('Contact sales@x.io or 415-555-0132, or help@x.io.'))).toEqual({ EMAIL: 2, PHONE: 1 });
    expect(s.counts.size).toBe(0);
  });
});
