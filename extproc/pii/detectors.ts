/**
 * @module pii/detectors
 * The built-in detectors. Speed comes from never running a regex over the whole text: each
 * detector jumps to its anchor with `indexOf` (SIMD-fast in V8) or with one linear pass over
 * char codes, then validates at that spot with a sticky regex or plain code. Every sticky regex
 * is bounded and linear, so no input can make a scan backtrack catastrophically.
 *
 * Anchors: `@` (e-mail), `:` (IPv6), `://` (URL passwords), literal key prefixes (credentials),
 * and runs of digits at a word boundary (cards, SSNs, phones, IPv4) or `XX00` (IBANs) found by
 * the single char-code pass.
 */
import {
  cardValid,
  ibanLengths,
  ibanMod97,
  ipv4Valid,
  ipv6Valid,
  jwtHeaderValid,
  ssnValid,
} from './checksums.js';
import { builtinPriority, type BuiltinEntityType, type Detection } from './entities.js';

type Out = Detection[];

function push(out: Out, start: number, end: number, type: BuiltinEntityType): void {
  out.push({ start, end, type, priority: builtinPriority[type] });
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isAlnum = (c: number): boolean => isDigit(c) || isUpper(c) || (c >= 97 && c <= 122);
/** ASCII word character (letters, digits, `_`); NaN (out of range) is not one. */
const isWord = (c: number): boolean => isAlnum(c) || c === 95;

// ---------------------------------------------------------------------------------------------
// Credentials with a literal prefix.

interface Anchored {
  readonly type: BuiltinEntityType;
  readonly needles: readonly string[];
  readonly re: RegExp;
  /** Capture group holding the value (the rest of the match is context, e.g. `Bearer `). */
  readonly group?: number;
  readonly check?: (value: string) => boolean;
}

const hasDigit = (s: string): boolean => /\d/.test(s);
const hasDigitAndLetter = (s: string): boolean => /\d/.test(s) && /[A-Za-z]/.test(s);

const anchored: readonly Anchored[] = [
  { type: 'ANTHROPIC_KEY', needles: ['sk-ant-'], re: /sk-ant-[A-Za-z0-9_-]{20,300}/y, check: hasDigitAndLetter },
  {
    type: 'OPENAI_KEY',
    needles: ['sk-'],
    re: /sk-(?!ant-)[A-Za-z0-9_-]{20,300}/y,
    check: (v) => hasDigitAndLetter(v.slice(3)),
  },
  { type: 'AWS_KEY', needles: ['AKIA', 'ASIA'], re: /(?:AKIA|ASIA)[A-Z0-9]{16}/y },
  {
    type: 'GITHUB_TOKEN',
    needles: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'],
    re: /gh[pousr]_[A-Za-z0-9]{36,251}/y,
  },
  { type: 'GITHUB_TOKEN', needles: ['github_pat_'], re: /github_pat_[A-Za-z0-9_]{22,255}/y },
  { type: 'SLACK_TOKEN', needles: ['xox'], re: /xox[baprs]-[A-Za-z0-9-]{10,250}/y, check: hasDigit },
  {
    type: 'STRIPE_KEY',
    needles: ['sk_live_', 'rk_live_', 'pk_live_', 'sk_test_', 'rk_test_', 'pk_test_'],
    re: /[rsp]k_(?:live|test)_[A-Za-z0-9]{10,247}/y,
  },
  { type: 'GOOGLE_API_KEY', needles: ['AIza'], re: /AIza[0-9A-Za-z_-]{35}/y },
  {
    type: 'JWT',
    needles: ['eyJ'],
    re: /eyJ[A-Za-z0-9_-]{6,2000}\.[A-Za-z0-9_-]{2,20000}\.[A-Za-z0-9_-]{0,2000}/y,
    check: (v) => jwtHeaderValid(v.slice(0, v.indexOf('.'))),
  },
  {
    type: 'BEARER_TOKEN',
    needles: ['Bearer', 'bearer', 'BEARER'],
    re: /[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+([A-Za-z0-9._~+/-]{16,4096}=*)/y,
    group: 1,
    check: (v) => /\d/.test(v) || (/[a-z]/.test(v) && /[A-Z]/.test(v)),
  },
];

/** Every anchor of every anchored detector, longest first, as one alternation. */
const anchorNeedles: readonly (readonly [string, Anchored])[] = anchored.flatMap((d) => d.needles.map((n) => [n, d] as const)).sort((a, b) => b[0].length - a[0].length);
const anchorRe = new RegExp(
  [...new Set(anchorNeedles.map(([n]) => n))].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'),
  'g',
);

/** For each anchor literal the regex can match: every (needle, detector) that starts at it too ("sk-ant-" also starts "sk-"). */
const anchorsByMatch: ReadonlyMap<string, readonly (readonly [string, Anchored])[]> = new Map(
  anchorNeedles.map(([n]) => [n, anchorNeedles.filter(([other]) => n.startsWith(other))] as const),
);

/**
 * One pass over the text for all anchors (an alternation of literals) instead of one indexOf
 * scan per needle: at each anchor, every detector whose needle starts there is tried ("sk-ant-"
 * also starts "sk-"). Overlapping candidates are settled later by resolveOverlaps.
 */
function detectAnchored(text: string, enabled: ReadonlySet<string>, out: Out): void {
  anchorRe.lastIndex = 0;
  for (let m = anchorRe.exec(text); m !== null; m = anchorRe.exec(text)) {
    const at = m.index;
    anchorRe.lastIndex = at + 1;
    if (isWord(text.charCodeAt(at - 1))) continue;
    for (const [, d] of anchorsByMatch.get(m[0])!) {
      if (!enabled.has(d.type)) continue;
      d.re.lastIndex = at;
      const r = d.re.exec(text);
      if (r === null) continue;
      const end = at + r[0].length;
      const next = text.charCodeAt(end);
      if (isAlnum(next) || (d.group === undefined && (next === 95 || next === 45))) continue;
      const value = d.group === undefined ? r[0] : (r[d.group] ?? '');
      if (d.check !== undefined && !d.check(value)) continue;
      push(out, end - value.length, end, d.type);
    }
    // Anchors inside a found entity are still tried: another detector's entity may start there
    // ("Bearer sk-proj-…": the key type wins over the generic bearer in resolveOverlaps).
  }
}

const pemBegin = /-----BEGIN ((?:[A-Z0-9]+ ){0,4})PRIVATE KEY-----/y;
/** Lines of base64 or PEM headers (`Proc-Type: 4,ENCRYPTED`); a blank line or prose ends it. */
const pemBody = /(?:\r?\n(?:[A-Za-z0-9+/=]+|[A-Za-z-]+: [^\r\n]*))*/y;

/** PEM private key blocks; a block pasted without its END line runs to the end of its base64. */
function detectPem(text: string, out: Out): void {
  let from = 0;
  for (;;) {
    const at = text.indexOf('-----BEGIN ', from);
    if (at === -1) return;
    from = at + 1;
    pemBegin.lastIndex = at;
    const m = pemBegin.exec(text);
    if (m === null) continue;
    const endMarker = `-----END ${m[1] ?? ''}PRIVATE KEY-----`;
    const endAt = text.indexOf(endMarker, at + m[0].length);
    let end: number;
    if (endAt !== -1 && endAt - at < 64 * 1024) {
      end = endAt + endMarker.length;
    } else {
      pemBody.lastIndex = at + m[0].length;
      pemBody.exec(text);
      end = pemBody.lastIndex;
    }
    push(out, at, end, 'PRIVATE_KEY');
    from = end;
  }
}

const urlUserinfo = /([^\s:/@?#"'<>]*):([^\s/@"'<>]+)@[A-Za-z0-9[]/y;

/** `scheme://user:password@host`: only the password is the entity. */
function detectUrlPasswords(text: string, out: Out): void {
  let from = 0;
  for (;;) {
    const at = text.indexOf('://', from);
    if (at === -1) return;
    from = at + 3;
    // The scheme must be there: a letter, then letters, digits, + . -
    let s = at;
    while (s > 0) {
      const c = text.charCodeAt(s - 1);
      if (isAlnum(c) || c === 43 || c === 46 || c === 45) s--;
      else break;
    }
    if (s === at) continue;
    urlUserinfo.lastIndex = at + 3;
    const m = urlUserinfo.exec(text);
    if (m === null) continue;
    const pw = m[2] ?? '';
    // Template values and masks are not secrets.
    if (/^(?:\*+|[xX]+|\$\{[^}]*\}|\$[A-Z_][A-Z0-9_]*|%[A-Z_]+%|<[^>]*>|\{\{.*\}\})$/.test(pw)) continue;
    const pwStart = at + 3 + (m[1] ?? '').length + 1;
    push(out, pwStart, pwStart + pw.length, 'URL_PASSWORD');
  }
}

// ---------------------------------------------------------------------------------------------
// E-mail addresses, expanded from each '@'.

const isLocalChar = (c: number): boolean =>
  isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45; // . _ % + -
const isDomainChar = (c: number): boolean => isAlnum(c) || c === 46 || c === 45;

function detectEmails(text: string, out: Out): void {
  let from = 0;
  for (;;) {
    const at = text.indexOf('@', from);
    if (at === -1) return;
    from = at + 1;
    let s = at;
    while (s > 0 && at - s < 65 && isLocalChar(text.charCodeAt(s - 1))) s--;
    if (s === at || at - s > 64) continue;
    while (s < at && text.charCodeAt(s) === 46) s++; // a sentence's '.' before the address
    let e = at + 1;
    while (e < text.length && e - at <= 255 && isDomainChar(text.charCodeAt(e))) e++;
    while (e > at + 1 && (text.charCodeAt(e - 1) === 46 || text.charCodeAt(e - 1) === 45)) e--;
    const local = text.slice(s, at);
    const domain = text.slice(at + 1, e);
    if (local.length === 0 || local.endsWith('.') || local.includes('..')) continue;
    if (!/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}$/.test(domain)) continue;
    if (isUrlUserinfo(text, s)) continue;
    push(out, s, e, 'EMAIL');
    from = e;
  }
}

/** `scheme://user:pass@host`: the part before '@' is URL userinfo, not a mailbox. */
function isUrlUserinfo(text: string, localStart: number): boolean {
  const prev = text.charCodeAt(localStart - 1);
  if (prev !== 58 && prev !== 47) return false; // ':' or '/'
  for (let i = localStart - 1; i > 2 && localStart - i < 512; i--) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 10 || c === 9 || c === 34) return false;
    if (c === 47 && text.charCodeAt(i - 1) === 47 && text.charCodeAt(i - 2) === 58) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// IPv6, expanded from each ':'.

const isHex = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

function detectIpv6(text: string, out: Out): void {
  let from = 0;
  for (;;) {
    const at = text.indexOf(':', from);
    if (at === -1) return;
    from = at + 1;
    let s = at;
    while (s > 0 && at - s < 45 && (isHex(text.charCodeAt(s - 1)) || text.charCodeAt(s - 1) === 58)) s--;
    if (isWord(text.charCodeAt(s - 1)) || text.charCodeAt(s - 1) === 46) continue;
    let e = at + 1;
    const lim = s + 46;
    while (e < text.length && e < lim) {
      const c = text.charCodeAt(e);
      if (isHex(c) || c === 58 || c === 46) e++;
      else break;
    }
    while (e > at && text.charCodeAt(e - 1) === 46) e--;
    if (text.charCodeAt(e - 1) === 58 && text.charCodeAt(e - 2) !== 58) e--;
    if (isWord(text.charCodeAt(e))) continue;
    const cand = text.slice(s, e);
    from = Math.max(from, e);
    if (ipv6Valid(cand)) push(out, s, e, 'IP_ADDRESS');
  }
}

// ---------------------------------------------------------------------------------------------
// Digit runs: cards, SSNs, phones, IPv4 — and IBANs, found in the same pass.

interface Group {
  /** Digits span. */
  readonly ds: number;
  readonly de: number;
  /** Span including parentheses. */
  readonly end: number;
  readonly paren: boolean;
  /** Separator before this group ('' for the first or around parentheses). */
  readonly sep: string;
}

const maxGroups = 8;

/** Groups of digits separated by one of ` .-` or parentheses, from `i` (a digit, `+` or `(`). */
function readRun(text: string, i: number): { plus: boolean; groups: Group[] } {
  let p = i;
  const plus = text.charCodeAt(p) === 43;
  if (plus) p++;
  const groups: Group[] = [];
  let sep = '';
  while (groups.length < maxGroups) {
    let q = p;
    const paren = text.charCodeAt(q) === 40;
    if (paren) q++;
    const ds = q;
    while (isDigit(text.charCodeAt(q)) && q - ds < 20) q++;
    const de = q;
    if (de === ds || de - ds > 19) break;
    if (paren) {
      if (text.charCodeAt(q) !== 41) break;
      q++;
    }
    groups.push({ ds, de, end: q, paren, sep });
    p = q;
    const c = text.charCodeAt(p);
    const n1 = text.charCodeAt(p + 1);
    if ((c === 32 || c === 46 || c === 45) && (isDigit(n1) || (n1 === 40 && c === 32 && isDigit(text.charCodeAt(p + 2))))) {
      sep = text[p] as string;
      p++;
      continue;
    }
    if (paren && isDigit(c)) {
      sep = '';
      continue;
    }
    if (c === 40 && isDigit(n1)) {
      sep = '';
      continue;
    }
    break;
  }
  return { plus, groups };
}

/** The run may end after group k-1: at the end, or before a space that starts another group. */
function endsCleanly(text: string, groups: readonly Group[], k: number): boolean {
  if (k < groups.length) return (groups[k] as Group).sep === ' ';
  const e = (groups[k - 1] as Group).end;
  const c = text.charCodeAt(e);
  if (isWord(c)) return false;
  if ((c === 45 || c === 46 || c === 47) && isWord(text.charCodeAt(e + 1))) return false;
  return true;
}

function digitsOf(text: string, groups: readonly Group[], k: number): string {
  let s = '';
  for (let j = 0; j < k; j++) s += text.slice((groups[j] as Group).ds, (groups[j] as Group).de);
  return s;
}

function lengths(groups: readonly Group[], k: number): string {
  let s = '';
  for (let j = 0; j < k; j++) s += (j ? ',' : '') + ((groups[j] as Group).de - (groups[j] as Group).ds);
  return s;
}

/** Same separator between every group (from group 1 on), and no parentheses. */
function uniformSep(groups: readonly Group[], k: number, allowed: string): string | undefined {
  if (k === 1) return (groups[0] as Group).paren ? undefined : '';
  const sep = (groups[1] as Group).sep;
  if (!allowed.includes(sep) || sep === '') return undefined;
  for (let j = 0; j < k; j++) {
    const g = groups[j] as Group;
    if (g.paren || (j > 0 && g.sep !== sep)) return undefined;
  }
  return sep;
}

const cardShapes = new Set(['4,4,4,4', '4,4,4,4,3', '4,6,5', '4,6,4', '4,4,4,1', '4,4,4,3', '4,4,4,4,2', '4,4,4,2']);

function cardAt(text: string, plus: boolean, groups: readonly Group[], k: number): boolean {
  if (plus) return false;
  const sep = uniformSep(groups, k, ' -');
  if (sep === undefined) return false;
  const digits = digitsOf(text, groups, k);
  if (digits.length < 12 || digits.length > 19) return false;
  if (k > 1 && !cardShapes.has(lengths(groups, k))) return false;
  return cardValid(digits);
}

function ssnAt(text: string, plus: boolean, groups: readonly Group[], k: number): boolean {
  if (plus || k !== 3) return false;
  if (uniformSep(groups, k, '- ') === undefined || lengths(groups, k) !== '3,2,4') return false;
  const [a, b, c] = groups as [Group, Group, Group];
  return ssnValid(text.slice(a.ds, a.de), text.slice(b.ds, b.de), text.slice(c.ds, c.de));
}

const versionContext = /(?:\bv|\bversion|\bver\.?|\brelease|\bbuild|\brev|\bvsn)\s*[:=#]?\s*$/i;

function ipv4At(text: string, start: number, plus: boolean, groups: readonly Group[], k: number): boolean {
  if (plus || k !== 4 || uniformSep(groups, k, '.') !== '.') return false;
  const g0 = groups[0] as Group;
  const g3 = groups[3] as Group;
  if (!ipv4Valid(text.slice(g0.ds, g3.de))) return false;
  return !versionContext.test(text.slice(Math.max(0, start - 16), start));
}

/**
 * Phone numbers: E.164 with `+` (8–15 digits, any grouping), North American `(415) 555-0132`
 * / `415-555-0132` / `415.555.0132` / `1-800-555-0199` (area and exchange 2–9), and national
 * numbers with a trunk `0` (`020 7946 0958`, `06 12 34 56 78`, 10–11 digits).
 */
function phoneAt(text: string, plus: boolean, groups: readonly Group[], k: number): boolean {
  const digits = digitsOf(text, groups, k);
  const n = digits.length;
  if (plus) {
    if (n < 8 || n > 15 || digits[0] === '0') return false;
    // Mixed separators are fine (`+1 (415) 555-0132`) but not dots mixed with others.
    let dots = 0;
    let others = 0;
    for (let j = 1; j < k; j++) {
      const s = (groups[j] as Group).sep;
      if (s === '.') dots++;
      else others++;
    }
    if (dots > 0 && others > 0) return false;
    // The '+' and its country code must be followed by real groups, not one digit pairs.
    return k === 1 ? n >= 10 : true;
  }
  const lens = lengths(groups, k);
  const g0 = groups[0] as Group;
  const nanp = (area: string, exch: string): boolean => area[0]! >= '2' && exch[0]! >= '2';
  // North American.
  if (lens === '3,3,4' || (lens === '1,3,3,4' && digits[0] === '1')) {
    const off = lens === '3,3,4' ? 0 : 1;
    const area = digits.slice(off, off + 3);
    const exch = digits.slice(off + 3, off + 6);
    if (!nanp(area, exch)) return false;
    const areaGroup = groups[off] as Group;
    if (areaGroup.paren) {
      // (415) 555-0132, (415)555-0132, 1 (415) 555-0132
      const third = groups[off + 2] as Group;
      return third.sep === '-' || third.sep === ' ' || third.sep === '.';
    }
    return uniformSep(groups, k, ' .-') !== undefined;
  }
  // National with a trunk prefix.
  if (digits[0] !== '0' || n < 10 || n > 11 || k < 2 || k > 5) return false;
  for (let j = 0; j < k; j++) {
    const g = groups[j] as Group;
    const len = g.de - g.ds;
    if (len < 2 || len > 8 || (g.paren && j > 0)) return false;
  }
  if (g0.paren) {
    for (let j = 2; j < k; j++) if ((groups[j] as Group).sep !== ' ') return false;
    return true;
  }
  const sep = uniformSep(groups, k, ' .-');
  if (sep === undefined) return false;
  return sep !== '.' || /^2(?:,2)+$/.test(lens);
}

/** A digit-run start may follow none of these (they make it part of a bigger token). */
const runBlocked = (c: number): boolean => isWord(c) || c === 46 || c === 43 || c === 45;
/** Cards, SSNs and phones additionally refuse an order-number `#`, a path, an amount. */
const numberBlocked = (c: number): boolean => c === 35 || c === 47 || c === 64 || c === 36 || c === 92;

interface RunWants {
  card: boolean;
  ssn: boolean;
  phone: boolean;
  ipv4: boolean;
  iban: boolean;
}

/**
 * Where a digit run or an IBAN can start: V8 scans for these far faster than a JS loop. A digit
 * run may not follow a word character, `.`, `+` or `-`: the regex consumes the allowed character
 * before it (a third faster here than a lookbehind), so a search for candidates from `resume`
 * starts one character earlier (see `nextRunStart`); position 0 has no character before it.
 */
const runStart = /[^A-Za-z0-9_.+-][0-9+(]|[A-Z][A-Z][0-9]/g;
const ibanStart = /[A-Z][A-Z][0-9]/g;

/**
 * The first candidate at or after `resume`, or -1. `test` rather than `exec`: no match array per
 * candidate. Where the candidate is follows from where the match ended: three characters back
 * for `[A-Z][A-Z][0-9]` (a digit candidate never follows a letter), else one.
 */
function nextRunStart(text: string, starts: RegExp, numbers: boolean, resume: number): number {
  if (resume === 0 && numbers) {
    const c = text.charCodeAt(0);
    if (isDigit(c) || c === 43 || c === 40) return 0;
  }
  starts.lastIndex = numbers && resume > 0 ? resume - 1 : resume;
  for (;;) {
    if (!starts.test(text)) return -1;
    const e = starts.lastIndex;
    const i = e >= 3 && isDigit(text.charCodeAt(e - 1)) && isUpper(text.charCodeAt(e - 2)) && isUpper(text.charCodeAt(e - 3)) ? e - 3 : e - 1;
    if (i >= resume) return i;
  }
}

function detectRuns(text: string, w: RunWants, out: Out): void {
  const numbers = w.card || w.ssn || w.phone || w.ipv4;
  const starts = numbers ? runStart : ibanStart;
  for (let i = nextRunStart(text, starts, numbers, 0), resume = 0; i !== -1; i = nextRunStart(text, starts, numbers, resume)) {
    const c = text.charCodeAt(i);
    // Where the next candidate may start unless a branch below says otherwise: after this match.
    resume = i + (isUpper(c) ? 3 : 1);
    if (isDigit(c) || ((c === 43 || c === 40) && isDigit(text.charCodeAt(i + 1)))) {
      const prev = text.charCodeAt(i - 1);
      if (runBlocked(prev) || (c === 40 && isDigit(prev))) {
        while (isDigit(text.charCodeAt(i + 1))) i++;
        resume = i + 1;
        continue;
      }
      if (isDigit(c)) {
        // Fast exit without building groups: a lone group of fewer than 8 digits (a year, a
        // count, a time) is no entity, and most digit runs in prose are such.
        let q = i + 1;
        while (isDigit(text.charCodeAt(q))) q++;
        if (q - i < 8) {
          const nc = text.charCodeAt(q);
          const n1 = text.charCodeAt(q + 1);
          if (nc !== 40 && !((nc === 32 || nc === 46 || nc === 45) && (isDigit(n1) || n1 === 40))) {
            resume = q;
            continue;
          }
        }
      }
      const { plus, groups } = readRun(text, i);
      if (groups.length === 0) {
        resume = i + 1;
        continue;
      }
      const numberOk = !numberBlocked(prev);
      // Digits in the first k groups (d): cheap gates before any detector builds strings.
      let d = 0;
      for (let j = 0; j < groups.length; j++) d += (groups[j] as Group).de - (groups[j] as Group).ds;
      let card = numberOk && w.card && !plus;
      let ssn = numberOk && w.ssn && !plus;
      let ipv4 = w.ipv4 && !plus;
      let phone = numberOk && w.phone;
      for (let k = groups.length; k >= 1; k--) {
        if (k < groups.length) d -= (groups[k] as Group).de - (groups[k] as Group).ds;
        const tryCard = card && d >= 12 && d <= 19;
        const trySsn = ssn && k === 3 && d === 9;
        const tryIp = ipv4 && k === 4 && d <= 12;
        const tryPhone = phone && d >= (plus ? 8 : 10) && d <= 15 && (plus || k > 1);
        if (!(tryCard || trySsn || tryIp || tryPhone) || !endsCleanly(text, groups, k)) continue;
        const end = (groups[k - 1] as Group).end;
        if (tryCard && cardAt(text, plus, groups, k)) {
          push(out, i, end, 'CREDIT_CARD');
          card = false;
        }
        if (trySsn && ssnAt(text, plus, groups, k)) {
          push(out, i, end, 'SSN');
          ssn = false;
        }
        if (tryIp && ipv4At(text, i, plus, groups, k)) {
          push(out, i, end, 'IP_ADDRESS');
          ipv4 = false;
        }
        if (tryPhone && phoneAt(text, plus, groups, k)) {
          push(out, i, end, 'PHONE');
          phone = false;
        }
      }
      // Later groups may start their own entity ("call 415 555 0132 4111 1111 …"): resume
      // after the first group; a group after a space passes the boundary test, others do not.
      // A parenthesised first group may hold an entity itself ("(4111111111111111)"): resume
      // just inside the parenthesis then.
      resume = (groups[0] as Group).paren ? i + 1 : (groups[0] as Group).end;
    } else if (w.iban && isUpper(c) && isUpper(text.charCodeAt(i + 1))) {
      if (isDigit(text.charCodeAt(i + 2)) && isDigit(text.charCodeAt(i + 3)) && !isWord(text.charCodeAt(i - 1))) {
        const end = ibanAt(text, i);
        if (end !== -1) {
          push(out, i, end, 'IBAN');
          resume = end;
        }
      }
    }
  }
}

/** IBAN at `i`: exactly the country's length, spaces allowed only between groups of four. */
function ibanAt(text: string, i: number): number {
  const want = ibanLengths[text.slice(i, i + 2)];
  if (want === undefined) return -1;
  let compact = '';
  let p = i;
  while (compact.length < want) {
    const c = text.charCodeAt(p);
    if (isDigit(c) || isUpper(c)) {
      compact += text[p];
      p++;
    } else if (c === 32 && compact.length % 4 === 0 && compact.length > 0) {
      const n1 = text.charCodeAt(p + 1);
      if (!(isDigit(n1) || isUpper(n1))) return -1;
      p++;
    } else {
      return -1;
    }
  }
  if (isAlnum(text.charCodeAt(p))) return -1;
  return ibanMod97(compact) === 1 ? p : -1;
}

/** Runs every enabled built-in detector over `text`, appending raw (possibly overlapping) detections. */
export function detectBuiltins(text: string, enabled: ReadonlySet<string>, out: Out): void {
  detectAnchored(text, enabled, out);
  if (enabled.has('PRIVATE_KEY')) detectPem(text, out);
  if (enabled.has('URL_PASSWORD')) detectUrlPasswords(text, out);
  if (enabled.has('EMAIL')) detectEmails(text, out);
  if (enabled.has('IP_ADDRESS')) detectIpv6(text, out);
  const wants: RunWants = {
    card: enabled.has('CREDIT_CARD'),
    ssn: enabled.has('SSN'),
    phone: enabled.has('PHONE'),
    ipv4: enabled.has('IP_ADDRESS'),
    iban: enabled.has('IBAN'),
  };
  if (wants.card || wants.ssn || wants.phone || wants.ipv4 || wants.iban) detectRuns(text, wants, out);
}
