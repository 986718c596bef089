/** XFCC parsing (Envoy's x-forwarded-client-cert grammar) and SPIFFE IDs. */
import { describe, expect, it } from 'vitest';
import { parseXfcc, XFCC_MAX_LENGTH } from '../../extproc/identity/xfcc.js';
import { parseSpiffeId } from '../../extproc/identity/spiffe.js';

describe('parseXfcc', () => {
  it('parses one element with the keys Istio sets', () => {
    const r = parseXfcc('By=spiffe://cluster.local/ns/gw/sa/gw;Hash=abc123;Subject="";URI=spiffe://cluster.local/ns/shop/sa/checkout');
    expect(r).toEqual({
      ok: true,
      elements: [{ by: 'spiffe://cluster.local/ns/gw/sa/gw', hash: 'abc123', subject: '', uri: ['spiffe://cluster.local/ns/shop/sa/checkout'], dns: [] }],
    });
  });

  it('splits elements on commas outside quotes and keeps their order', () => {
    const h =
      'By=spiffe://a/x;URI=spiffe://td/ns/one/sa/first,' +
      'By=spiffe://b/y;Subject="CN=x, O=Acme; Inc";URI=spiffe://td/ns/two/sa/second;DNS=a.example;DNS=b.example';
    const r = parseXfcc(h);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.elements).toHaveLength(2);
    expect(r.elements[1]).toMatchObject({ subject: 'CN=x, O=Acme; Inc', uri: ['spiffe://td/ns/two/sa/second'], dns: ['a.example', 'b.example'] });
  });

  it('unescapes \\" inside quoted values and treats keys case-insensitively', () => {
    const r = parseXfcc('subject="CN=\\"quoted\\", O=x";uri=spiffe://td/a');
    if (!r.ok) throw new Error(r.error.message);
    expect(r.elements[0]!.subject).toBe('CN="quoted", O=x');
    expect(r.elements[0]!.uri).toEqual(['spiffe://td/a']);
  });

  it('keeps a URL-encoded Cert with "=" in an unquoted value', () => {
    const r = parseXfcc('Hash=aa;Cert="-----BEGIN%20CERTIFICATE-----%0AMIIB=="');
    expect(r.ok && r.elements[0]!.cert).toBe('-----BEGIN%20CERTIFICATE-----%0AMIIB==');
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['By=x;Subject="unterminated', 'unterminated_quote'],
    ['By=x;Subject="a"b;URI=y', 'garbage_after_quote'],
    ['Byx;URI=y', 'missing_equals'],
    ['By=x;Color=blue', 'unknown_key'],
    ['By=x;By=y', 'duplicate_key'],
    ['By=x,,URI=y', 'empty_element'],
    ['By=x,', 'empty_element'],
    ['URI=spi"ffe', 'unterminated_quote'],
    ['Subject="abc\\', 'bad_escape'],
  ])('refuses %j with %s', (h, code) => {
    const r = parseXfcc(h);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(code);
  });

  it('refuses a header over the length limit without scanning it', () => {
    const r = parseXfcc(`URI=${'a'.repeat(XFCC_MAX_LENGTH)}`);
    expect(!r.ok && r.error.code).toBe('too_long');
  });

  it('never throws on random bytes', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const alphabet = 'ByURIHash=;,"\\ x:/';
    for (let n = 0; n < 2000; n++) {
      let s = '';
      for (let i = 0; i < 1 + rnd() * 30; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      const r = parseXfcc(s);
      expect(typeof r.ok).toBe('boolean');
    }
  });
});

describe('parseSpiffeId', () => {
  it('reads namespace and service account of an Istio identity', () => {
    expect(parseSpiffeId('spiffe://Cluster.Local/ns/shop/sa/checkout')).toEqual({
      id: 'spiffe://cluster.local/ns/shop/sa/checkout',
      trustDomain: 'cluster.local',
      segments: ['ns', 'shop', 'sa', 'checkout'],
      namespace: 'shop',
      serviceAccount: 'checkout',
    });
  });

  it('accepts other paths without namespace', () => {
    const id = parseSpiffeId('spiffe://example.org/workload/api');
    expect(id?.id).toBe('spiffe://example.org/workload/api');
    expect(id && 'namespace' in id).toBe(false);
  });

  it.each(['https://x/ns/a/sa/b', 'spiffe://', 'spiffe://td/ns//sa/b', 'spiffe://td/ns/../sa/b', 'spiffe://t d/x', 'spiffe://td/a?x=1', 'spiffe://td/a%20b'])(
    'refuses %j',
    (uri) => expect(parseSpiffeId(uri)).toBeUndefined(),
  );
});
