/**
 * @module cache/verify
 * The check a candidate found by similarity must pass before it is served. Embeddings place
 * "17 times 23" right next to "17 times 24" and "can I" next to "can't I"; no threshold tells
 * them apart. So the parts that flip an answer are extracted from both prompts and must agree:
 * numbers with their units (in order), negations (as a multiset), named entities (capitalised
 * words not at a sentence start, compared without case) and quoted strings (verbatim, in
 * order). Any disagreement is a miss. The rules err towards rejecting: a false miss costs one
 * provider call, a false hit serves a wrong answer.
 */

export type VerifyResult = { ok: true } | { ok: false; reason: 'numbers' | 'negation' | 'entities' | 'quotes' | 'content-words' };

const NUMBER_WORDS: Record<string, string> = {
  zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9',
  ten: '10', eleven: '11', twelve: '12', thirteen: '13', fourteen: '14', fifteen: '15', sixteen: '16',
  seventeen: '17', eighteen: '18', nineteen: '19', twenty: '20', thirty: '30', forty: '40', fifty: '50',
  sixty: '60', seventy: '70', eighty: '80', ninety: '90', hundred: '100', thousand: '1000', million: '1e6',
  billion: '1e9', trillion: '1e12', half: '0.5', twice: '×2', double: '×2', triple: '×3', dozen: '12',
  first: '#1', second: '#2', third: '#3',
};

/** Unit words that count as a number's unit when separated from it by a space. */
const UNITS = new Set(
  ('% percent percentage km kilometer kilometers kilometre kilometres m meter meters metre metres cm mm mi mile miles ' +
    'ft foot feet in inch inches yd yard yards kg kilogram kilograms g gram grams mg lb lbs pound pounds oz ounce ounces ' +
    'l liter liters litre litres ml gallon gallons s sec secs second seconds ms min mins minute minutes h hr hrs hour hours ' +
    'day days week weeks month months year years usd eur gbp jpy dollar dollars euro euros cent cents c f k ' +
    'celsius fahrenheit kelvin degree degrees b kb mb gb tb bit bits byte bytes kbps mbps gbps hz khz mhz ghz w kw mw kwh ' +
    'v mah times x').split(' '),
);

const CURRENCY = /[$€£¥₹]/u;

function words(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(/[\p{L}\p{N}]+(?:[’'][\p{L}]+)?/gu) ?? [];
}

/** Numbers in order, each with its unit or currency: "5 km", "5km" → "5|km"; "$5" → "5|$". */
export function extractNumbers(text: string): string[] {
  const t = text.normalize('NFKC');
  const out: string[] = [];
  const re = /(?:([$€£¥₹])\s?)?(\d[\d,_]*(?:\.\d+)?|\.\d+)(?:\s?([%°]|[\p{L}µ]+))?/gu;
  for (const m of t.matchAll(re)) {
    const start = m.index ?? 0;
    // "abc123": a digit glued to letters before it is an identifier, still compared verbatim.
    const prev = start > 0 ? t[start - 1]! : ' ';
    if (/[\p{L}]/u.test(prev) && !m[1]) {
      out.push(`id:${m[0].toLowerCase()}`);
      continue;
    }
    const value = String(Number(m[2]!.replace(/[,_]/g, '')));
    let unit = m[3]?.toLowerCase() ?? '';
    const glued = m[3] !== undefined && !/\s/.test(m[0].slice(m[0].indexOf(m[2]!) + m[2]!.length, m[0].length - m[3].length));
    if (unit && !glued && !UNITS.has(unit)) unit = '';
    out.push(`${value}|${m[1] ?? ''}${unit}`);
  }
  for (const w of words(t)) {
    const n = NUMBER_WORDS[w];
    if (n) out.push(`${n}|`);
  }
  // Currency symbols and unit words anywhere ("convert miles to km") also count, in order.
  for (const w of t.toLowerCase().match(/\p{L}+/gu) ?? []) if (UNITS.has(w) && w.length > 1 && !['in', 'times', 'x', 'second'].includes(w)) out.push(`unit:${w}`);
  if (CURRENCY.test(t)) out.push(...(t.match(/[$€£¥₹]/gu) ?? []).map((c) => `cur:${c}`));
  return out;
}

const NEGATION_WORDS: Record<string, string> = {
  not: 'not', no: 'no', never: 'never', none: 'none', nobody: 'nobody', nothing: 'nothing', neither: 'neither',
  nor: 'nor', nowhere: 'nowhere', without: 'without', cannot: 'not', cant: 'not', dont: 'not', doesnt: 'not',
  didnt: 'not', isnt: 'not', arent: 'not', wasnt: 'not', werent: 'not', wont: 'not', wouldnt: 'not',
  shouldnt: 'not', couldnt: 'not', hasnt: 'not', havent: 'not', hadnt: 'not', mustnt: 'not', neednt: 'not',
  aint: 'not', except: 'except', unless: 'unless', excluding: 'except', nicht: 'not', kein: 'no', keine: 'no',
  nie: 'never', ohne: 'without', pas: 'not', jamais: 'never', sans: 'without', nunca: 'never', sin: 'without', non: 'not',
};

/** Negation markers, normalised ("can't" and "cannot" → "not"), sorted: compared as a multiset. */
export function extractNegations(text: string): string[] {
  const out: string[] = [];
  for (const raw of words(text)) {
    const w = raw.replace(/[’']/g, '');
    if (/n[’']t$/.test(raw)) out.push('not');
    else if (NEGATION_WORDS[w]) out.push(NEGATION_WORDS[w]);
  }
  return out.sort();
}

/** Capitalised words that begin a sentence yet are entity candidates unless common. */
const COMMON_SENTENCE_STARTERS = new Set(
  ('what how why who whom whose when where which is are was were am be can could do does did the a an please tell give ' +
    'write explain list i it its this that these those there here my your our their we you he she they in on at for to ' +
    'of and but or if should would will shall may might must hello hi hey thanks thank describe summarize summarise ' +
    'translate show make find compare create generate help let now so then also just ok okay yes no not hey dear ' +
    'given assume suppose consider calculate compute define name what’s whats who’s how’s where’s').split(' '),
);

/** Capitalised words (proper-noun heuristic), lower-cased, in order of appearance. */
export function extractEntities(text: string): string[] {
  const t = text.normalize('NFKC');
  const out: string[] = [];
  const re = /[\p{L}\p{N}][\p{L}\p{N}’'-]*/gu;
  for (const m of t.matchAll(re)) {
    const w = m[0];
    if (!/^\p{Lu}/u.test(w)) continue;
    const lower = w.toLowerCase();
    if (lower === 'i' || /^i[’'](m|d|ll|ve)$/.test(lower)) continue;
    const before = t.slice(0, m.index).trimEnd();
    const sentenceStart = before === '' || /[.!?:;\n"“(]$/.test(before) || /\n\s*$/.test(t.slice(0, m.index));
    // "Can't", "Don't", "What's" at a sentence start: their stems are common starters.
    const stems = [lower, lower.replace(/[’']/g, ''), lower.replace(/n[’']t$/, ''), lower.replace(/[’']t$/, '')];
    if (sentenceStart && stems.some((x) => COMMON_SENTENCE_STARTERS.has(x))) continue;
    out.push(lower);
  }
  return out;
}

/** Quoted strings, verbatim: "…", “…”, «…», `…`, and '…' when the quotes are not apostrophes. */
export function extractQuotes(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|“([^”]*)”|«([^»]*)»|`([^`]*)`|(?<![\p{L}\p{N}])'([^']*)'(?![\p{L}\p{N}])|(?<![\p{L}\p{N}])‘([^’]*)’(?![\p{L}\p{N}])/gu;
  for (const m of text.normalize('NFKC').matchAll(re)) {
    const inner = m.slice(1).find((g) => g !== undefined) ?? '';
    out.push(inner);
  }
  return out;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Every entity of one prompt appears as a word (any case) in the other, both ways. */
function entitiesAgree(a: string, b: string): boolean {
  const wa = new Set(words(a));
  const wb = new Set(words(b));
  const covered = (ents: string[], ws: Set<string>): boolean =>
    ents.every((e) => e.split(/[’'-]/).filter(Boolean).every((part) => ws.has(part) || ws.has(e)));
  return covered(extractEntities(a), wb) && covered(extractEntities(b), wa);
}

/** Words that carry no question of their own: adding, dropping or swapping them is trivial. */
const FILLER = new Set(
  ('a an the please pls kindly can could would will do does did i me my you your is are be it its of to in on for ' +
    'with and or so just quick quickly briefly short some any this that what whats how who which where when why ' +
    'tell give let us again hi hello hey thanks thank').split(' '),
);

function levenshteinAtMostOne(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  let j = 0;
  let edits = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      i++;
      j++;
      continue;
    }
    if (++edits > 1) return false;
    if (a.length > b.length) i++;
    else if (b.length > a.length) j++;
    else {
      i++;
      j++;
    }
  }
  return edits + (a.length - i) + (b.length - j) <= 1;
}

/** Content words of `a` missing from `b` (a one-letter typo of a 5+ letter word counts as present). */
function missingContentWords(a: string, b: string): string[] {
  // Letters only: numbers were compared already, and "5km" is "5 km".
  const norm = (t: string): string[] =>
    (t.normalize('NFKC').toLowerCase().match(/\p{L}+(?:[’']\p{L}+)?/gu) ?? []).map((w) => w.replace(/[’']/g, ''));
  const wb = new Set(norm(b));
  return norm(a).filter(
    (w) => !FILLER.has(w) && !wb.has(w) && !(w.length >= 5 && [...wb].some((x) => x.length >= 5 && levenshteinAtMostOne(w, x))),
  );
}

export interface VerifyOptions {
  /**
   * Also require the same content words (up to order, case, filler words and one-letter
   * typos). Default true: with the lexical embedder a one-word change in a long prompt
   * ("validation" → "logging") stays above any useful threshold, and no other rule sees it.
   * Turn off with a sentence-embedding model, where paraphrase hits are the point.
   */
  contentWords?: boolean;
}

export function verifyMatch(newPrompt: string, storedPrompt: string, opts: VerifyOptions = {}): VerifyResult {
  if (newPrompt === storedPrompt) return { ok: true };
  if (!sameList(extractNumbers(newPrompt), extractNumbers(storedPrompt))) return { ok: false, reason: 'numbers' };
  if (!sameList(extractNegations(newPrompt), extractNegations(storedPrompt))) return { ok: false, reason: 'negation' };
  if (!sameList(extractQuotes(newPrompt), extractQuotes(storedPrompt))) return { ok: false, reason: 'quotes' };
  if (!entitiesAgree(newPrompt, storedPrompt)) return { ok: false, reason: 'entities' };
  if ((opts.contentWords ?? true) && (missingContentWords(newPrompt, storedPrompt).length > 0 || missingContentWords(storedPrompt, newPrompt).length > 0)) {
    return { ok: false, reason: 'content-words' };
  }
  return { ok: true };
}
