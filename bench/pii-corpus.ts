// Seeded, labeled corpus for the PII bench: realistic prompts (chat, code, e-mails, logs, JSON,
// tables) carrying entities of every built-in type in many formats, mixed with the hard
// negatives that must survive (order/invoice numbers, timestamps, dates, versions, UUIDs,
// hashes, numbers failing their checksum). Every planted entity's exact span is recorded.
import { ibanLengths, ibanMod97, luhnValid } from '../extproc/pii/checksums.js';
import { mulberry32 } from '../test/helpers/prng.js';

/** A planted entity: `doc.text.slice(start, end)` is the value. */
export interface Label {
  readonly type: string;
  readonly start: number;
  readonly end: number;
}

export interface CorpusDoc {
  readonly style: Style;
  readonly text: string;
  readonly labels: readonly Label[];
}

export type Style = 'chat' | 'code' | 'email' | 'log' | 'json' | 'table';
export const styles: readonly Style[] = ['chat', 'code', 'email', 'log', 'json', 'table'];

/** Seeded PRNG (mulberry32, test/helpers/prng.ts). */
export const rng = mulberry32;

class Gen {
  constructor(readonly r: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)] as T;
  }
  digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String(this.int(0, 9));
    return s;
  }
  chars(n: number, alphabet: string): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(0, alphabet.length - 1)];
    return s;
  }
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_NUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const B64URL = ALNUM + '-_';
const B64 = ALNUM + '+/';
const HEX = '0123456789abcdef';

const firstNames = ['john', 'maria', 'wei', 'fatima', 'lars', 'aiko', 'carlos', 'priya', 'olga', 'sam'];
const lastNames = ['smith', 'garcia', 'chen', 'khan', 'nielsen', 'tanaka', 'silva', 'patel', 'ivanova', 'lee'];
const domains = ['example.com', 'acme.io', 'mail.co.uk', 'corp.example.net', 'gmail.com', 'uni-berlin.de', 'startup.ai'];

function withCheck(g: Gen, prefix: string, len: number): string {
  let body = prefix + g.digits(len - prefix.length - 1);
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return body + d;
  return body + '0';
}

function group(s: string, sizes: number[], sep: string): string {
  const out: string[] = [];
  let p = 0;
  for (const n of sizes) {
    out.push(s.slice(p, p + n));
    p += n;
  }
  return out.join(sep);
}

/** Entity generators, each returning one value in a randomly chosen realistic format. */
export const entityGen: Record<string, (g: Gen) => string> = {
  EMAIL: (g) => {
    const f = g.pick(firstNames);
    const l = g.pick(lastNames);
    const local = g.pick([`${f}.${l}`, `${f}${g.int(1, 99)}`, `${f[0]}${l}`, `${f}+${g.pick(['news', 'work'])}`, `${f}_${l}`]);
    const e = `${local}@${g.pick(domains)}`;
    return g.r() < 0.1 ? e.toUpperCase() : e;
  },
  PHONE: (g) => {
    const area = `${g.int(2, 9)}${g.digits(2)}`;
    const exch = `${g.int(2, 9)}${g.digits(2)}`;
    const line = g.digits(4);
    return g.pick([
      () => `(${area}) ${exch}-${line}`,
      () => `${area}-${exch}-${line}`,
      () => `${area}.${exch}.${line}`,
      () => `${area} ${exch} ${line}`,
      () => `+1 ${area} ${exch} ${line}`,
      () => `+1 (${area}) ${exch}-${line}`,
      () => `+1${area}${exch}${line}`,
      () => `1-${area}-${exch}-${line}`,
      () => `+44 20 ${g.digits(4)} ${g.digits(4)}`,
      () => `020 ${g.digits(4)} ${g.digits(4)}`,
      () => `07${g.digits(3)} ${g.digits(6)}`,
      () => `+33 ${g.int(1, 9)} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)}`,
      () => `0${g.int(1, 9)} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)}`,
      () => `0${g.int(6, 7)}.${g.digits(2)}.${g.digits(2)}.${g.digits(2)}.${g.digits(2)}`,
      () => `+49 30 ${g.digits(7)}`,
      () => `+91-${g.int(6, 9)}${g.digits(4)}-${g.digits(5)}`,
    ])();
  },
  CREDIT_CARD: (g) => {
    const [num, sizes] = g.pick([
      () => [withCheck(g, '4', 16), [4, 4, 4, 4]] as const,
      () => [withCheck(g, `5${g.int(1, 5)}`, 16), [4, 4, 4, 4]] as const,
      () => [withCheck(g, `2${g.int(221, 720)}`, 16), [4, 4, 4, 4]] as const,
      () => [withCheck(g, g.pick(['34', '37']), 15), [4, 6, 5]] as const,
      () => [withCheck(g, '6011', 16), [4, 4, 4, 4]] as const,
      () => [withCheck(g, `35${g.int(28, 89)}`, 16), [4, 4, 4, 4]] as const,
    ])();
    return group(num, [...sizes], g.pick(['', ' ', '-']));
  },
  IBAN: (g) => {
    const country = g.pick(['DE', 'GB', 'FR', 'NL', 'ES', 'IT', 'CH', 'BE', 'PL', 'SE']);
    const len = ibanLengths[country] as number;
    let bban = '';
    if (country === 'GB' || country === 'NL') bban = g.chars(4, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') + g.digits(len - 8);
    else if (country === 'IT') bban = g.chars(1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') + g.digits(len - 5);
    else bban = g.digits(len - 4);
    const check = 98 - ibanMod97(`${country}00${bban}`);
    const iban = `${country}${String(check).padStart(2, '0')}${bban}`;
    return g.r() < 0.5 ? iban : (iban.match(/.{1,4}/g) ?? []).join(' ');
  },
  SSN: (g) => {
    let area: number;
    do area = g.int(1, 899);
    while (area === 666);
    return `${String(area).padStart(3, '0')}-${String(g.int(1, 99)).padStart(2, '0')}-${String(g.int(1, 9999)).padStart(4, '0')}`;
  },
  IP_ADDRESS: (g) => {
    if (g.r() < 0.65) return `${g.int(1, 223)}.${g.int(0, 255)}.${g.int(0, 255)}.${g.int(1, 254)}`;
    const h = (): string => g.chars(g.int(1, 4), HEX).replace(/^0+(?=.)/, '');
    return g.pick([
      () => Array.from({ length: 8 }, () => g.chars(4, HEX)).join(':'),
      () => `2001:db8::${h()}:${h()}`,
      () => `fe80::${h()}:${h()}:${h()}:${h()}`,
      () => `2a00:1450:${h()}:${h()}::${h()}`,
    ])();
  },
  OPENAI_KEY: (g) => g.pick([`sk-proj-${g.chars(48, B64URL)}`, `sk-${g.chars(20, ALNUM)}T3BlbkFJ${g.chars(20, ALNUM)}`, `sk-svcacct-${g.chars(40, B64URL)}`]).replace(/^(sk-(?:proj-|svcacct-)?)(.)/, '$1A1'),
  ANTHROPIC_KEY: (g) => `sk-ant-api03-${g.chars(93, B64URL)}AA`,
  AWS_KEY: (g) => `${g.pick(['AKIA', 'ASIA'])}${g.chars(16, UPPER_NUM)}`,
  GITHUB_TOKEN: (g) => g.pick([`${g.pick(['ghp', 'gho', 'ghu', 'ghs', 'ghr'])}_${g.chars(36, ALNUM)}`, `github_pat_11${g.chars(20, UPPER_NUM)}_${g.chars(59, ALNUM)}`]),
  SLACK_TOKEN: (g) => `xox${g.pick(['b', 'p', 'a'])}-${g.digits(12)}-${g.digits(13)}-${g.chars(24, ALNUM)}`,
  STRIPE_KEY: (g) => `${g.pick(['sk', 'rk', 'pk'])}_${g.pick(['live', 'test'])}_${g.chars(g.int(24, 99), ALNUM)}`,
  GOOGLE_API_KEY: (g) => `AIza${g.chars(35, B64URL)}`,
  JWT: (g) => {
    const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${enc({ alg: g.pick(['HS256', 'RS256', 'ES256']), typ: 'JWT' })}.${enc({ sub: g.digits(8), iat: 1710000000 + g.int(0, 1e6), role: 'user' })}.${g.chars(43, B64URL)}`;
  },
  PRIVATE_KEY: (g) => {
    const label = g.pick(['RSA ', 'EC ', 'OPENSSH ', '']);
    const lines = Array.from({ length: g.int(3, 12) }, () => g.chars(64, B64));
    return `-----BEGIN ${label}PRIVATE KEY-----\n${lines.join('\n')}\n${g.chars(20, B64)}==\n-----END ${label}PRIVATE KEY-----`;
  },
  URL_PASSWORD: (g) => g.chars(g.int(8, 20), ALNUM + '!$*_~'),
  BEARER_TOKEN: (g) => g.chars(g.int(24, 64), ALNUM + '._-'),
};

/** Hard negatives: none of these may be reported. */
export const negativeGen: Record<string, (g: Gen) => string> = {
  order: (g) => g.pick([`#${g.digits(9)}`, `ORD-${2020 + g.int(0, 5)}-${g.digits(6)}`, `order ${g.int(1, 9)}${g.digits(8)}`, `PO-${g.digits(5)}-${g.digits(2)}`]),
  invoice: (g) => g.pick([`INV-${g.digits(6)}`, `INV/${2024}/${g.digits(5)}`, `invoice no. ${g.digits(7)}`]),
  timestamp: (g) =>
    g.pick([
      `2024-${String(g.int(1, 12)).padStart(2, '0')}-${String(g.int(1, 28)).padStart(2, '0')}T${String(g.int(0, 23)).padStart(2, '0')}:${String(g.int(0, 59)).padStart(2, '0')}:${String(g.int(0, 59)).padStart(2, '0')}.${g.digits(3)}Z`,
      `2024-${String(g.int(1, 12)).padStart(2, '0')}-${String(g.int(1, 28)).padStart(2, '0')} ${String(g.int(0, 23)).padStart(2, '0')}:${String(g.int(0, 59)).padStart(2, '0')}:${String(g.int(0, 59)).padStart(2, '0')}`,
      `${1_700_000_000 + g.int(0, 99_999_999)}`,
      `${String(g.int(1, 12)).padStart(2, '0')}:${String(g.int(0, 59)).padStart(2, '0')}:${String(g.int(0, 59)).padStart(2, '0')}`,
    ]),
  date: (g) => g.pick([`${g.int(1, 28)}/${g.int(1, 12)}/2024`, `${String(g.int(1, 28)).padStart(2, '0')}.${String(g.int(1, 12)).padStart(2, '0')}.2023`, `2023-${String(g.int(1, 12)).padStart(2, '0')}-${String(g.int(1, 28)).padStart(2, '0')}`]),
  version: (g) => g.pick([`v${g.int(0, 9)}.${g.int(0, 20)}.${g.int(0, 30)}`, `${g.int(1, 5)}.${g.int(0, 40)}.${g.int(0, 9)}`, `version ${g.int(1, 9)}.${g.int(0, 9)}.${g.int(0, 9)}.${g.int(0, 99)}`, `10.0.${g.int(10000, 22000)}.${g.int(1, 3000)}`]),
  uuid: (g) => `${g.chars(8, HEX)}-${g.chars(4, HEX)}-4${g.chars(3, HEX)}-a${g.chars(3, HEX)}-${g.chars(12, HEX)}`,
  hash: (g) => g.chars(g.pick([32, 40, 64]), HEX),
  badCard: (g) => {
    let n: string;
    do n = `4${g.digits(15)}`;
    while (luhnValid(n));
    return g.r() < 0.5 ? n : group(n, [4, 4, 4, 4], ' ');
  },
  badIban: (g) => {
    let s: string;
    do s = `DE${g.int(10, 99)}${g.digits(18)}`;
    while (ibanMod97(s) === 1);
    return s;
  },
  badSsn: (g) => `${g.pick(['000', '666', `9${g.digits(2)}`])}-${String(g.int(1, 99)).padStart(2, '0')}-${g.digits(4)}`,
  money: (g) => `$${g.int(1, 999)},${g.digits(3)}.${g.digits(2)}`,
  placeholderKey: (g) => g.pick(['YOUR_API_KEY', 'sk-...', '<token>', 'AKIA...', '${OPENAI_API_KEY}', 'ghp_xxx']),
  docEmailLike: (g) => g.pick(['user at example dot com', '@decorator', 'foo@bar', 'name@localhost']),
};

/** A text being assembled with its labels. */
class Builder {
  text = '';
  labels: Label[] = [];
  constructor(readonly g: Gen) {}
  add(s: string): this {
    this.text += s;
    return this;
  }
  entity(type: string, value?: string): this {
    const v = value ?? (entityGen[type] as (g: Gen) => string)(this.g);
    this.labels.push({ type, start: this.text.length, end: this.text.length + v.length });
    this.text += v;
    return this;
  }
  neg(kind?: string): this {
    const k = kind ?? this.g.pick(Object.keys(negativeGen));
    this.text += (negativeGen[k] as (g: Gen) => string)(this.g);
    return this;
  }
  urlWithPassword(): this {
    const g = this.g;
    this.add(`${g.pick(['postgres', 'mysql', 'redis', 'amqp', 'https', 'mongodb+srv'])}://${g.pick(['admin', 'app', 'svc_user', 'deploy'])}:`);
    this.entity('URL_PASSWORD');
    const host = g.pick(['db.internal', 'cache-1.prod', '10.0.4.2', 'cluster0.mongodb.net']);
    this.add('@');
    if (host === '10.0.4.2') this.entity('IP_ADDRESS', host);
    else this.add(host);
    return this.add(`:${g.int(1000, 9999)}/${g.pick(['app', 'main', '0'])}`);
  }
  bearer(): this {
    this.add(`${this.g.pick(['Authorization: Bearer ', 'authorization: bearer ', '-H "Authorization: Bearer '])}`);
    return this.entity('BEARER_TOKEN');
  }
}

const structured = ['EMAIL', 'PHONE', 'CREDIT_CARD', 'IBAN', 'SSN', 'IP_ADDRESS'];
const secrets = ['OPENAI_KEY', 'ANTHROPIC_KEY', 'AWS_KEY', 'GITHUB_TOKEN', 'SLACK_TOKEN', 'STRIPE_KEY', 'GOOGLE_API_KEY', 'JWT'];
const words = 'the a to of and we please check can you it is this that for with on our team update issue account customer request review next week thanks'.split(' ');

function prose(g: Gen, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(g.pick(words));
  return out.join(' ');
}

function chat(b: Builder): void {
  const g = b.g;
  for (let i = 0, n = g.int(3, 7); i < n; i++) {
    b.add(`${g.pick(['User', 'Assistant'])}: ${prose(g, g.int(4, 12))} `);
    const t = g.pick(structured);
    b.add(g.pick(['my ', 'the ', 'use ', '(', '"'])).entity(t).add(g.pick([', ', '. ', ') ', '" ', ' and ', '\n']));
    b.add(`${prose(g, g.int(2, 8))} `).neg().add(g.pick(['. ', ', ', '\n']));
    if (g.r() < 0.3) b.add('key ').entity(g.pick(secrets)).add(' ');
  }
}

function code(b: Builder): void {
  const g = b.g;
  b.add(`import os\n\n# ${prose(g, 6)} ${'v'}${g.int(1, 3)}.${g.int(0, 9)}.${g.int(0, 9)}\n`);
  b.add('OPENAI_API_KEY = "').entity('OPENAI_KEY').add('"\n');
  b.add('client = Client(api_key="').entity(g.pick(secrets)).add(`", timeout=${g.int(5, 60)})\n`);
  b.add('DATABASE_URL = "').urlWithPassword().add('"\n');
  b.add(`session_id = "`).neg('uuid').add(`"  # build `).neg('hash').add('\n');
  b.add('headers = {"').bearer().add('"}\n');
  b.add(`ADMIN_EMAIL = "`).entity('EMAIL').add(`"\nSERVER = "`).entity('IP_ADDRESS').add(`"\n`);
  if (g.r() < 0.35) b.add('PRIVATE_KEY = """').entity('PRIVATE_KEY').add('"""\n');
  b.add(`x = arr[::2]  # std::vector, released `).neg('date').add('\n');
}

function email(b: Builder): void {
  const g = b.g;
  b.add('From: ').entity('EMAIL').add('\nTo: ').entity('EMAIL').add(`\nDate: Mon, 15 Mar 2024 14:22:05 +0000\nSubject: Re: `).neg('invoice').add('\n\n');
  b.add(`Hi ${g.pick(firstNames)},\n\n${prose(g, 12)}. Please wire the amount to `).entity('IBAN').add(` by `).neg('date').add('.\n');
  b.add('My SSN is ').entity('SSN').add(' and card ').entity('CREDIT_CARD').add(` (order `).neg('order').add(').\n');
  b.add('Call me on ').entity('PHONE').add(' or ').entity('PHONE').add('.\n\n');
  b.add(`Tracking ref `).neg().add(`, amount `).neg('money').add(`\n--\n${g.pick(firstNames)} | `).entity('PHONE').add('\n');
}

function log(b: Builder): void {
  const g = b.g;
  for (let i = 0, n = g.int(5, 12); i < n; i++) {
    b.neg('timestamp').add(` ${g.pick(['INFO', 'WARN', 'ERROR', 'DEBUG'])} [${g.pick(['api', 'auth', 'billing'])}] `);
    switch (g.int(0, 6)) {
      case 0:
        b.add('login ok user=').entity('EMAIL').add(' ip=').entity('IP_ADDRESS');
        break;
      case 1:
        b.add('request_id=').neg('uuid').add(' latency=').add(String(g.int(1, 900))).add('ms from ').entity('IP_ADDRESS');
        break;
      case 2:
        b.add('upstream call ').bearer();
        break;
      case 3:
        b.add('payment failed card=').entity('CREDIT_CARD').add(' invoice=').neg('invoice');
        break;
      case 4:
        b.add('client version=').neg('version').add(' sha=').neg('hash');
        break;
      case 5:
        b.add('token=').entity(g.pick(['JWT', 'AWS_KEY', 'SLACK_TOKEN', 'GITHUB_TOKEN']));
        break;
      default:
        b.add('connect ').urlWithPassword();
    }
    b.add('\n');
  }
}

function json(b: Builder): void {
  const g = b.g;
  b.add('{\n  "customer": {"name": "').add(g.pick(firstNames)).add('", "email": "').entity('EMAIL').add('", "phone": "').entity('PHONE').add('"},\n');
  b.add('  "billing": {"iban": "').entity('IBAN').add('", "card": "').entity('CREDIT_CARD').add('", "invoice": "').neg('invoice').add('"},\n');
  b.add('  "order_id": "').neg('order').add('", "created_at": "').neg('timestamp').add('", "id": "').neg('uuid').add('",\n');
  b.add('  "ssn": "').entity('SSN').add('", "last_ip": "').entity('IP_ADDRESS').add('", "app_version": "').neg('version').add('",\n');
  b.add('  "stripe": "').entity('STRIPE_KEY').add('", "google": "').entity('GOOGLE_API_KEY').add('", "checksum": "').neg('hash').add('", "ref": "').neg('badCard').add('"\n}\n');
}

function table(b: Builder): void {
  const g = b.g;
  b.add('| name | email | phone | card | ssn | order | updated |\n|---|---|---|---|---|---|---|\n');
  for (let i = 0, n = g.int(4, 10); i < n; i++) {
    b.add(`| ${g.pick(firstNames)} ${g.pick(lastNames)} | `).entity('EMAIL').add(' | ').entity('PHONE').add(' | ');
    if (g.r() < 0.5) b.entity('CREDIT_CARD');
    else b.neg('badCard');
    b.add(' | ');
    if (g.r() < 0.5) b.entity('SSN');
    else b.neg('badSsn');
    b.add(' | ').neg('order').add(' | ').neg('date').add(' |\n');
  }
}

const builders: Record<Style, (b: Builder) => void> = { chat, code, email, log, json, table };

/** `count` documents, deterministic for a seed. */
export function generateCorpus(seed: number, count: number): CorpusDoc[] {
  const g = new Gen(rng(seed));
  const docs: CorpusDoc[] = [];
  for (let i = 0; i < count; i++) {
    const style = styles[i % styles.length] as Style;
    const b = new Builder(g);
    builders[style](b);
    if (g.r() < 0.2) b.add(`\nnegatives: ${Object.keys(negativeGen).map((k) => (negativeGen[k] as (g: Gen) => string)(g)).join(' ; ')}\n`);
    docs.push({ style, text: b.text, labels: b.labels });
  }
  return docs;
}

/** A prompt of about `bytes` characters built from corpus documents. */
export function promptOfSize(seed: number, bytes: number): string {
  const parts: string[] = [];
  let n = 0;
  let s = seed;
  while (n < bytes) {
    for (const d of generateCorpus(s++, 60)) {
      parts.push(d.text);
      n += d.text.length + 2;
      if (n >= bytes) break;
    }
  }
  return parts.join('\n\n').slice(0, bytes);
}
