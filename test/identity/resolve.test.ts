/** Caller identity: source order, default and refusal, credential hashing. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { identityOptionsSchema, type IdentityOptions } from '../../extproc/identity/options.js';
import { credentialId, resolveIdentity } from '../../extproc/identity/resolve.js';

const opts = (o: Record<string, unknown> = {}): IdentityOptions => identityOptionsSchema.parse(o);
const headers = (h: Record<string, string>) => (name: string) => h[name];
const XFCC = 'By=spiffe://cluster.local/ns/gw/sa/gateway;URI=spiffe://cluster.local/ns/shop/sa/cart,By=spiffe://cluster.local/ns/gw/sa/gw;Hash=ab;URI=spiffe://cluster.local/ns/shop/sa/checkout';

describe('resolveIdentity', () => {
  it('takes the SPIFFE URI of the last XFCC element (the hop our proxy appended)', () => {
    expect(resolveIdentity(headers({ 'x-forwarded-client-cert': XFCC }), opts())).toEqual({
      ok: true,
      identity: { caller: 'spiffe://cluster.local/ns/shop/sa/checkout', source: 'xfcc', namespace: 'shop', serviceAccount: 'checkout' },
    });
  });

  it('tries sources in the configured order', () => {
    const h = headers({ 'x-forwarded-client-cert': XFCC, 'x-caller-id': 'billing', authorization: 'Bearer sk-secret' });
    expect(resolveIdentity(h, opts())).toMatchObject({ ok: true, identity: { source: 'xfcc' } });
    const r = resolveIdentity(h, opts({ sources: ['header', 'xfcc'] }));
    expect(r).toEqual({ ok: true, identity: { caller: 'billing', source: 'header' } });
    const k = resolveIdentity(h, opts({ sources: ['api-key', 'header'] }));
    expect(k.ok && k.identity.source).toBe('api-key');
    // Absent sources are skipped.
    expect(resolveIdentity(headers({ 'x-caller-id': 'billing' }), opts()).ok).toBe(true);
  });

  it('hashes the credential, never returns it, and maps known hashes to names', () => {
    const id = `key:${createHash('sha256').update('sk-secret').digest('hex').slice(0, 16)}`;
    expect(credentialId('sk-secret')).toBe(id);
    const bearer = resolveIdentity(headers({ authorization: 'Bearer sk-secret' }), opts());
    expect(bearer).toEqual({ ok: true, identity: { caller: id, source: 'api-key' } });
    expect(JSON.stringify(bearer)).not.toContain('sk-secret');
    const xkey = resolveIdentity(headers({ 'x-api-key': 'sk-secret' }), opts());
    expect(xkey.ok && xkey.identity.caller).toBe(id);
    const named = resolveIdentity(headers({ 'x-api-key': 'sk-secret' }), opts({ apiKeys: { [id.slice(4)]: 'team-search' } }));
    expect(named.ok && named.identity.caller).toBe('team-search');
  });

  it('uses the default caller, or refuses, when no source is present', () => {
    expect(resolveIdentity(headers({}), opts())).toEqual({ ok: true, identity: { caller: 'anonymous', source: 'default' } });
    expect(resolveIdentity(headers({}), opts({ defaultCaller: 'public' }))).toMatchObject({ ok: true, identity: { caller: 'public' } });
    expect(resolveIdentity(headers({}), opts({ refuse: true }))).toMatchObject({ ok: false, refusal: { code: 'missing' } });
  });

  it('refuses a present but malformed source, or moves on with onInvalid: next', () => {
    const bad = headers({ 'x-forwarded-client-cert': 'By=x;Subject="open', 'x-caller-id': 'billing' });
    const r = resolveIdentity(bad, opts());
    expect(r).toMatchObject({ ok: false, refusal: { code: 'invalid_xfcc' } });
    expect(!r.ok && r.refusal.message).not.toContain('open');
    expect(resolveIdentity(bad, opts({ onInvalid: 'next' }))).toMatchObject({ ok: true, identity: { caller: 'billing' } });
    // XFCC without a SPIFFE URI in its last element.
    expect(resolveIdentity(headers({ 'x-forwarded-client-cert': 'URI=spiffe://td/a,Hash=ab' }), opts())).toMatchObject({ ok: false });
    // Header value outside the charset / too long.
    expect(resolveIdentity(headers({ 'x-caller-id': 'a b' }), opts())).toMatchObject({ ok: false, refusal: { code: 'invalid_header' } });
    expect(resolveIdentity(headers({ 'x-caller-id': 'a'.repeat(129) }), opts())).toMatchObject({ ok: false });
    expect(resolveIdentity(headers({ 'x-api-key': 'key with space' }), opts())).toMatchObject({ ok: false, refusal: { code: 'invalid_credential' } });
  });

  it('accepts only configured trust domains', () => {
    const h = headers({ 'x-forwarded-client-cert': 'URI=spiffe://evil.example/ns/shop/sa/checkout' });
    expect(resolveIdentity(h, opts({ trustDomains: ['cluster.local'] }))).toMatchObject({ ok: false, refusal: { code: 'untrusted_domain' } });
    expect(resolveIdentity(h, opts()).ok).toBe(true);
  });

  it('reads a configured header name and validates options', () => {
    expect(resolveIdentity(headers({ 'x-team': 'ml' }), opts({ header: 'x-team', sources: ['header'] }))).toMatchObject({ ok: true, identity: { caller: 'ml' } });
    expect(identityOptionsSchema.safeParse({ sources: ['xfcc', 'xfcc'] }).success).toBe(false);
    expect(identityOptionsSchema.safeParse({ sources: ['ldap'] }).success).toBe(false);
    expect(identityOptionsSchema.safeParse({ header: 'X Caller' }).success).toBe(false);
    expect(identityOptionsSchema.safeParse({ apiKeys: { 'not-hex': 'a' } }).success).toBe(false);
  });

  it('never throws, even when reading a header throws', () => {
    const throwing = () => {
      throw new Error('boom');
    };
    expect(resolveIdentity(throwing, opts())).toMatchObject({ ok: false });
    expect(resolveIdentity(throwing, opts({ onInvalid: 'next' }))).toMatchObject({ ok: true, identity: { source: 'default' } });
  });
});
