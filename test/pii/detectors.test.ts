import { describe, expect, it } from 'vitest';
import { found } from './helpers.js';

const jwt = (header: object, payload: object): string =>
  `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2lnbmF0dXJlX2J5dGVzX2hlcmU`;

/** Each positive is found exactly, as the only entity, inside a sentence. */
const positives: Record<string, string[]> = {
  EMAIL: ['john.doe@example.com', 'a.b-c+tag@mail.co.uk', 'x_y%z@sub.domain.io', 'USER@EXAMPLE.ORG'],
  PHONE: [
    '+1 415 555 0132',
    '+14155550132',
    '+44 20 7946 0958',
    '+33 1 23 45 67 89',
    '+49 30 1234567',
    '+1 (415) 555-0132',
    '+91-98765-43210',
    '(415) 555-0132',
    '415-555-0132',
    '415.555.0132',
    '415 555 0132',
    '1-800-555-0199',
    '020 7946 0958',
    '07700 900123',
    '06 12 34 56 78',
    '06.12.34.56.78',
    '(020) 7946 0958',
  ],
  CREDIT_CARD: ['4111 1111 1111 1111', '4111-1111-1111-1111', '4111111111111111', '5555 5555 5555 4444', '3782 822463 10005', '6011000990139424'],
  IBAN: ['GB82 WEST 1234 5698 7654 32', 'DE89370400440532013000', 'FR14 2004 1010 0505 0001 3M02 606', 'NL91ABNA0417164300'],
  SSN: ['078-05-1120', '123-45-6789', '219 09 9999'],
  IP_ADDRESS: ['192.168.1.20', '10.0.0.1', '8.8.8.8', '2001:db8::1', 'fe80::1ff:fe23:4567:890a', '2001:0db8:85a3:0000:0000:8a2e:0370:7334'],
  OPENAI_KEY: ['sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z', 'sk-4f8Kd93Jd02Lz8QpX7mN1bV6cT5rY3uE9wA2sD4f', 'sk-svcacct-Zx9Yw8Vu7Ts6Rq5Po4Nm3'],
  ANTHROPIC_KEY: ['sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123-AA'],
  AWS_KEY: ['AKIAIOSFODNN7EXAMPLE', 'ASIAY34FZKBOKMUTVV7A'],
  GITHUB_TOKEN: ['ghp_16C7e42F292c6912E7710c838347Ae178B4a', 'gho_16C7e42F292c6912E7710c838347Ae178B4a', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz'],
  SLACK_TOKEN: ['xoxb-2048-1234567890-AbCdEfGhIjKl', 'xoxp-123456789012-abcdefghij'],
  STRIPE_KEY: ['sk_live_51H8abcdEFGHijklMNOP', 'rk_live_abcdefghij1234567890', 'pk_test_TYooMQauvdEDq54NiTphI7jx'],
  GOOGLE_API_KEY: ['AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe'],
  JWT: [jwt({ alg: 'HS256', typ: 'JWT' }, { sub: '1234567890', name: 'x' })],
  PRIVATE_KEY: [
    '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aozN3tihPmljnnudb9G3HECdnH\nlWu2/a1gB9JW5TBQ+AVpum9Okx7KfqkfBKL9mcHgSL0yWMdjMfNOqNtrQqKlN4kE\n-----END RSA PRIVATE KEY-----',
    '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----',
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----',
  ],
};

describe('built-in detectors: positives', () => {
  for (const [type, values] of Object.entries(positives)) {
    for (const v of values) {
      it(`${type}: ${v.slice(0, 40)}`, () => {
        expect(found(`Here it is: ${v}, thanks.`)).toEqual([`${type}:${v}`]);
        expect(found(v)).toEqual([`${type}:${v}`]);
        expect(found(`"${v}"`)).toEqual([`${type}:${v}`]);
      });
    }
  }

  it('URL passwords: only the password part', () => {
    expect(found('DATABASE_URL=postgres://admin:s3cr3t!x@db.internal:5432/app')).toEqual(['URL_PASSWORD:s3cr3t!x']);
    expect(found('redis://:hunter2pass@cache:6379/0')).toEqual(['URL_PASSWORD:hunter2pass']);
    expect(found('https://user@example.com/path')).toEqual([]);
    expect(found('postgres://user:${DB_PASSWORD}@db/app')).toEqual([]);
  });

  it('Authorization: Bearer values (a known key type wins over the generic bearer)', () => {
    expect(found('Authorization: Bearer abcDEF123456789xyzTOKEN')).toEqual(['BEARER_TOKEN:abcDEF123456789xyzTOKEN']);
    expect(found('-H "authorization: bearer 9f8e7d6c5b4a39281716"')).toEqual(['BEARER_TOKEN:9f8e7d6c5b4a39281716']);
    expect(found('Authorization: Bearer sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z')).toEqual([
      'OPENAI_KEY:sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z',
    ]);
    expect(found('Use Bearer authentication with Bearer $OPENAI_API_KEY')).toEqual([]);
  });

  it('an e-mail in a mailto link and next to punctuation', () => {
    expect(found('<a href="mailto:ann@corp.example.net">write</a>')).toEqual(['EMAIL:ann@corp.example.net']);
    expect(found('(ann@corp.io).')).toEqual(['EMAIL:ann@corp.io']);
  });

  it('an IPv4 with a port and in a URL', () => {
    expect(found('curl http://10.1.2.3:8080/health')).toEqual(['IP_ADDRESS:10.1.2.3']);
  });

  it('a PEM block without its END line still covers the key material', () => {
    const text = 'key:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n\nthen more words';
    const r = found(text);
    expect(r).toHaveLength(1);
    expect(r[0]).toContain('MHcCAQEEIIrYSSNQ');
    expect(r[0]).not.toContain('then more');
  });
});

describe('built-in detectors: hard negatives stay untouched', () => {
  const negatives = [
    'Order #100234987 shipped; invoice INV-2024-00123 and PO-88123-44 are paid.',
    'Order number 4111111111111112 (fails Luhn), ref 1234567812345670 (no card network).',
    'Tracking 1Z999AA10123456784, ticket JIRA-4521, build 20240315.1',
    'At 2024-03-15T14:22:05Z and 2024-03-15 14:22:05.123 UTC, also 15/03/2024 and 15.03.2024, 12:30:45.',
    'Unix time 1710512525 and 1710512525123 ms.',
    'Upgrade to version 2.14.0, v1.2.3, 10.0.19041.1234 and release 1.2.3.4 with python3.11.',
    'UUID 550e8400-e29b-41d4-a716-446655440000 and {123e4567-e89b-12d3-a456-426614174000}',
    'md5 5d41402abc4b2a76b9719d911017c592 sha1 aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d',
    'sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    'SSNs that are not: 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567, 123-45-0000.',
    'Bad IBAN GB82 WEST 1234 5698 7654 33 and bad IP 256.1.2.3 and 1.2.3.',
    'MAC 00:1A:2B:3C:4D:5E, time 14:22:05, C++ std::vector and abc::def, python a[::2].',
    'Price $1,234.56, 3.14159, 1e-10, -415-555-0132x, 50% of 1000000 users.',
    'Coordinates 48.8566, 2.3522 and 40.7128 -74.0060.',
    'Use sk-learn for ML and the task-runner; desk-1234567890123456789012.',
    'Placeholders YOUR_API_KEY, Bearer <token>, sk-..., AKIA..., ghp_xxx.',
    'user at example dot com, @decorator, foo@bar, a@b.c',
    'Table | 2024 | 12 | 1500.00 |\n| 2023 | 11 | 999.99 |',
    'Chapter 3.2.1 and section 4.5.6.7.8 of ISO 8601:2004.',
  ];
  for (const n of negatives) {
    it(n.slice(0, 50), () => {
      expect(found(n)).toEqual([]);
    });
  }
});

describe('overlaps resolve deterministically', () => {
  it('a URL password beats the e-mail shape it contains', () => {
    expect(found('smtp://mailer:pa55word@mail.example.com')).toEqual(['URL_PASSWORD:pa55word']);
  });
  it('a card beats the phone-shaped prefix of its digits', () => {
    expect(found('4111 1111 1111 1111')).toEqual(['CREDIT_CARD:4111 1111 1111 1111']);
  });
  it('adjacent entities are each found', () => {
    expect(found('a@b.io,c@d.io;415-555-0132; 192.168.0.1')).toEqual([
      'EMAIL:a@b.io',
      'EMAIL:c@d.io',
      'PHONE:415-555-0132',
      'IP_ADDRESS:192.168.0.1',
    ]);
  });
  it('a phone followed by a card in one run of digit groups', () => {
    expect(found('call 415 555 0132 4111 1111 1111 1111')).toEqual(['PHONE:415 555 0132', 'CREDIT_CARD:4111 1111 1111 1111']);
  });
});

describe('no catastrophic backtracking', () => {
  it('pathological inputs scan quickly', () => {
    const inputs = [
      'a'.repeat(200_000) + '@',
      '@'.repeat(100_000),
      '1 '.repeat(100_000),
      '1-'.repeat(100_000),
      ':'.repeat(100_000) + 'a:'.repeat(50_000),
      'sk-' + 'a'.repeat(100_000),
      'eyJ' + 'a'.repeat(50_000) + '.' + 'b'.repeat(50_000),
      '-----BEGIN PRIVATE KEY-----' + 'A'.repeat(200_000),
      'GB82 '.repeat(50_000),
      'x://'.repeat(50_000),
    ];
    for (const s of inputs) {
      const t0 = performance.now();
      found(s);
      // Generous bound (a shared CI machine); backtracking would take seconds or minutes.
      expect(performance.now() - t0, s.slice(0, 10)).toBeLessThan(1500);
    }
  });
});
