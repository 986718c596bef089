/**
 * @module pii/checksums
 * The validations that keep detectors honest: Luhn and issuer ranges for cards, the IBAN
 * country length table and mod-97, US SSN number ranges, IP address syntax, JWT headers.
 * Pure functions over strings, no regexes with backtracking.
 */

/** Luhn checksum over a string of ASCII digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

function prefixIn(digits: string, len: number, lo: number, hi: number): boolean {
  const p = Number(digits.slice(0, len));
  return p >= lo && p <= hi;
}

/** Whether a digit string has the prefix and length of a real card network. */
export function cardIssuerValid(digits: string): boolean {
  const n = digits.length;
  const c = digits[0];
  if (c === '4') return n === 13 || n === 16 || n === 19; // Visa
  if (prefixIn(digits, 2, 51, 55) || prefixIn(digits, 4, 2221, 2720)) return n === 16; // Mastercard
  if (prefixIn(digits, 4, 2200, 2204)) return n >= 16 && n <= 19; // Mir
  if (digits.startsWith('34') || digits.startsWith('37')) return n === 15; // Amex
  if (
    digits.startsWith('6011') ||
    digits.startsWith('65') ||
    prefixIn(digits, 3, 644, 649) ||
    prefixIn(digits, 6, 622126, 622925)
  ) {
    return n >= 16 && n <= 19; // Discover
  }
  if (digits.startsWith('62')) return n >= 16 && n <= 19; // UnionPay
  if (prefixIn(digits, 4, 3528, 3589)) return n >= 16 && n <= 19; // JCB
  if (prefixIn(digits, 3, 300, 305) || digits.startsWith('36') || digits.startsWith('38') || digits.startsWith('39')) {
    return n >= 14 && n <= 19; // Diners Club
  }
  if (/^(?:5018|5020|5038|5893|6304|6759|676[1-3])/.test(digits)) return n >= 12 && n <= 19; // Maestro
  return false;
}

/** A payment card number: issuer prefix and length, then Luhn. */
export function cardValid(digits: string): boolean {
  return cardIssuerValid(digits) && luhnValid(digits);
}

/** IBAN length per country (ISO 13616 registry). */
export const ibanLengths: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20,
};

/** mod-97 of the rearranged IBAN, computed digit by digit (no BigInt). */
export function ibanMod97(compact: string): number {
  const s = compact.slice(4) + compact.slice(0, 4);
  let r = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) r = (r * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) r = (r * 100 + (c - 55)) % 97;
    else return -1;
  }
  return r;
}

/** An IBAN without spaces, upper case: country length and mod-97 == 1. */
export function ibanValid(compact: string): boolean {
  const len = ibanLengths[compact.slice(0, 2)];
  return len === compact.length && ibanMod97(compact) === 1;
}

/** US SSN ranges: area not 000, 666 or 9xx; group not 00; serial not 0000. */
export function ssnValid(area: string, group: string, serial: string): boolean {
  if (area.length !== 3 || group.length !== 2 || serial.length !== 4) return false;
  if (area === '000' || area === '666' || area[0] === '9') return false;
  return group !== '00' && serial !== '0000';
}

/** Dotted-quad IPv4: four decimal octets ≤ 255, no leading zeros. */
export function ipv4Valid(s: string): boolean {
  // One pass over the characters (no split, no regex): it runs for every dotted number found.
  let parts = 0;
  let len = 0;
  let value = 0;
  let leadingZero = false;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (len === 0 || len > 3 || (len > 1 && leadingZero) || value > 255) return false;
      parts++;
      len = 0;
      value = 0;
      continue;
    }
    if (c < 48 || c > 57) return false;
    if (len === 0) leadingZero = c === 48;
    value = value * 10 + (c - 48);
    len++;
  }
  return parts === 4;
}

const hexGroup = /^[0-9A-Fa-f]{1,4}$/;

/**
 * IPv6 in full or compressed form (one `::`), optionally with an IPv4 tail. Compressed forms
 * must contain a digit somewhere so that code such as `abc::def` is not an address.
 */
export function ipv6Valid(s: string): boolean {
  if (s.length < 3 || s.length > 45) return false;
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return false;
  let groups = 0;
  const count = (part: string, last: boolean): boolean => {
    if (part === '') return true;
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i] as string;
      if (last && i === items.length - 1 && g.includes('.')) {
        if (!ipv4Valid(g)) return false;
        groups += 2;
      } else if (hexGroup.test(g)) {
        groups += 1;
      } else {
        return false;
      }
    }
    return true;
  };
  if (dbl === -1) return count(s, true) && groups === 8;
  const head = s.slice(0, dbl);
  const tail = s.slice(dbl + 2);
  if (!count(head, false) || !count(tail, true)) return false;
  if (groups === 0 || groups > 7) return false;
  // `::2` is a Python slice far more often than an address; `::1` is loopback.
  if (groups === 1 && s !== '::1' && !(head !== '' && tail === '') && !(head === '' && tail.includes('.'))) {
    return false;
  }
  return /\d/.test(s);
}

/** A JWT's first segment: base64url of a JSON object with an `alg` string. */
export function jwtHeaderValid(segment: string): boolean {
  if (segment.length < 10 || segment.length > 2000) return false;
  try {
    const json = Buffer.from(segment, 'base64url').toString('utf8');
    const header: unknown = JSON.parse(json);
    return (
      header !== null &&
      typeof header === 'object' &&
      typeof (header as Record<string, unknown>)['alg'] === 'string'
    );
  } catch {
    return false;
  }
}
