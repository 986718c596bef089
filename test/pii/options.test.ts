import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { builtinEntityTypes } from '../../extproc/pii/entities.js';
import { PiiEngine } from '../../extproc/pii/engine.js';
import { piiOptionsSchema } from '../../extproc/pii/options.js';

function issues(raw: unknown): string[] {
  try {
    piiOptionsSchema.parse(raw);
    return [];
  } catch (err) {
    if (!(err instanceof ZodError)) throw err;
    return err.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  }
}

describe('pii options', () => {
  it('no options: every built-in type tokenized, restore on, fail closed', () => {
    const o = piiOptionsSchema.parse({});
    expect(o.restore).toBe(true);
    expect(o.scanResponses).toBe(false);
    expect(o.failure).toBe('closed');
    const actions = PiiEngine.fromOptions(undefined).actionsFor();
    for (const t of builtinEntityTypes) expect(actions.get(t)).toBe('tokenize');
  });

  it('errors name the key', () => {
    expect(issues({ custom: [{ name: 'X', pattern: '([a-z' }] })[0]).toMatch(/^custom\.0\.pattern: invalid regular expression/);
    expect(issues({ custom: [{ name: 'X', pattern: 'a*' }] })).toEqual(['custom.0.pattern: matches the empty string']);
    expect(issues({ custom: [{ name: 'lower', pattern: 'a' }] })[0]).toMatch(/^custom\.0\.name: /);
    expect(issues({ custom: [{ name: 'EMAIL', pattern: 'a' }] })).toEqual(['custom.0.name: "EMAIL" is already an entity type']);
    expect(issues({ entities: { EMAILS: 'redact' } })).toEqual(['entities.EMAILS: unknown entity type "EMAILS"']);
    expect(issues({ entities: { EMAIL: 'hide' } })[0]).toMatch(/^entities\.EMAIL: /);
    expect(issues({ rules: [{ match: {}, entities: {} }] })[0]).toMatch(/^rules\.0\.match: /);
    expect(issues({ rules: [{ match: { route: 'r' }, entities: { NOPE: 'allow' } }] })).toEqual([
      'rules.0.entities.NOPE: unknown entity type "NOPE"',
    ]);
    expect(issues({ denyList: { terms: ['ok', ''] } })[0]).toMatch(/^denyList\.terms\.1: /);
    expect(issues({ bogus: 1 })[0]).toMatch(/bogus/);
  });

  it('custom and deny-list names can be given actions and rules', () => {
    const engine = PiiEngine.fromOptions({
      custom: [{ name: 'TICKET', pattern: 'TCK-\\d+' }],
      denyList: [{ name: 'CUSTOMER', terms: ['Acme Corp'], action: 'redact' }],
      entities: { TICKET: 'redact' },
      rules: [{ match: { route: 'r' }, entities: { CUSTOMER: 'allow' } }],
    });
    expect(engine.session().rewrite('TCK-1 for Acme Corp')).toBe('<TICKET> for <CUSTOMER>');
    expect(engine.session({ route: 'r' }).rewrite('TCK-1 for acme corp')).toBe('<TICKET> for acme corp');
  });
});
