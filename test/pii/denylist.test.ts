import { describe, expect, it } from 'vitest';
import { PiiEngine } from '../../extproc/pii/engine.js';
import { TermMatcher } from '../../extproc/pii/termMatcher.js';

function hits(m: TermMatcher, text: string): string[] {
  const out: string[] = [];
  m.scan(text, (s, e) => out.push(text.slice(s, e)));
  return out;
}

describe('deny list', () => {
  it('case-insensitive whole words, longest term wins', () => {
    const m = new TermMatcher(['Acme', 'Acme Corp', 'Falcon', 'Émile Zola']);
    expect(hits(m, 'ACME corp and acme, Acmes, xacme, falcon-9, Project FALCON. émile zola!')).toEqual([
      'ACME corp',
      'acme',
      'falcon',
      'FALCON',
      'émile zola',
    ]);
  });

  it('thousands of terms compiled once, each found, non-terms untouched', () => {
    const terms = Array.from({ length: 5000 }, (_, i) => `Customer${i.toString(36)}Ltd`);
    const m = new TermMatcher(terms);
    expect(m.size).toBe(5000);
    const text = terms.filter((_, i) => i % 7 === 0).join(' met ') + ' and Customer0LtdX, CustomerZZZZLtd';
    const got = hits(m, text);
    expect(got).toHaveLength(Math.ceil(5000 / 7));
    expect(got).not.toContain('Customer0LtdX');
  });

  it('through the engine, with tokenize and the allow list', () => {
    const engine = PiiEngine.fromOptions({
      denyList: { name: 'CODENAME', terms: ['Bluebird', 'Nightjar'] },
      allowList: ['nightjar'],
    });
    const s = engine.session();
    const out = s.rewrite('Bluebird ships before Nightjar; bluebird again.');
    expect(out).toBe('<CODENAME_1> ships before Nightjar; <CODENAME_2> again.');
    expect(s.restore(out)).toBe('Bluebird ships before Nightjar; bluebird again.');
  });
});
