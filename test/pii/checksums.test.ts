import { describe, expect, it } from 'vitest';
import {
  cardIssuerValid,
  cardValid,
  ibanValid,
  ipv4Valid,
  ipv6Valid,
  jwtHeaderValid,
  luhnValid,
  ssnValid,
} from '../../extproc/pii/checksums.js';

describe('Luhn and card issuers', () => {
  it('accepts valid test numbers of every network', () => {
    for (const n of [
      '4111111111111111', // Visa
      '4222222222222', // Visa 13
      '5555555555554444', // Mastercard
      '2223003122003222', // Mastercard 2-series
      '378282246310005', // Amex
      '6011111111111117', // Discover
      '3530111333300000', // JCB
      '30569309025904', // Diners
      '6200000000000005', // UnionPay
    ]) {
      expect(cardValid(n), n).toBe(true);
    }
  });
  it('rejects a changed digit, a wrong length, an unknown prefix', () => {
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(cardValid('4111111111111112')).toBe(false);
    expect(cardIssuerValid('41111111111111')).toBe(false); // Visa with 14 digits
    expect(luhnValid('1234567812345670')).toBe(true);
    expect(cardValid('1234567812345670')).toBe(false); // Luhn ok, no network starts with 1
    expect(cardValid('37828224631000')).toBe(false); // Amex needs 15
    expect(luhnValid('')).toBe(false);
    expect(luhnValid('12a4')).toBe(false);
  });
});

describe('IBAN', () => {
  it('accepts valid IBANs from several countries', () => {
    for (const i of ['GB82WEST12345698765432', 'DE89370400440532013000', 'FR1420041010050500013M02606', 'NL91ABNA0417164300', 'NO9386011117947', 'MT84MALT011000012345MTLCAST001S']) {
      expect(ibanValid(i), i).toBe(true);
    }
  });
  it('rejects a bad checksum, a wrong length for the country, an unknown country', () => {
    expect(ibanValid('GB82WEST12345698765433')).toBe(false);
    expect(ibanValid('GB82WEST1234569876543')).toBe(false);
    expect(ibanValid('ZZ82WEST12345698765432')).toBe(false);
    expect(ibanValid('DE89370400440532013001')).toBe(false);
  });
});

describe('SSN', () => {
  it('applies area, group and serial rules', () => {
    expect(ssnValid('078', '05', '1120')).toBe(true);
    expect(ssnValid('000', '12', '3456')).toBe(false);
    expect(ssnValid('666', '12', '3456')).toBe(false);
    expect(ssnValid('900', '12', '3456')).toBe(false);
    expect(ssnValid('999', '12', '3456')).toBe(false);
    expect(ssnValid('123', '00', '3456')).toBe(false);
    expect(ssnValid('123', '45', '0000')).toBe(false);
    expect(ssnValid('899', '99', '9999')).toBe(true);
  });
});

describe('IP addresses', () => {
  it('IPv4 octets', () => {
    expect(ipv4Valid('192.168.0.1')).toBe(true);
    expect(ipv4Valid('255.255.255.255')).toBe(true);
    expect(ipv4Valid('256.1.1.1')).toBe(false);
    expect(ipv4Valid('01.2.3.4')).toBe(false);
    expect(ipv4Valid('1.2.3')).toBe(false);
    for (const a of ['0.0.0.0', '10.0.0.1', '9.99.199.249']) expect(ipv4Valid(a), a).toBe(true);
    for (const a of ['1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.4a', '1000.1.1.1', '1.2.3.00', '', '1.2.3.-4']) expect(ipv4Valid(a), a).toBe(false);
  });
  it('IPv6 full, compressed, with IPv4 tail; not times, MACs or code', () => {
    for (const a of ['2001:0db8:85a3:0000:0000:8a2e:0370:7334', '2001:db8::1', 'fe80::1ff:fe23:4567:890a', '::1', '::ffff:192.0.2.128', 'fe80::']) {
      expect(ipv6Valid(a), a).toBe(true);
    }
    for (const a of ['14:22:05', '00:1A:2B:3C:4D:5E', 'abc::def', '1::2::3', '::2', '12345::1', '1:2:3:4:5:6:7:8:9']) {
      expect(ipv6Valid(a), a).toBe(false);
    }
  });
});

describe('JWT header', () => {
  it('must decode to JSON with alg', () => {
    expect(jwtHeaderValid(Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url'))).toBe(true);
    expect(jwtHeaderValid(Buffer.from('{"typ":"JWT","x":1}').toString('base64url'))).toBe(false);
    expect(jwtHeaderValid('eyJub3QganNvbg')).toBe(false);
  });
});
