/**
 * HttpConnectionManager.local_reply_config (http_connection_manager.proto LocalReplyConfig,
 * ResponseMapper) and the access-log filters its mappers use (config/accesslog/v3/accesslog.proto
 * AccessLogFilter): the subset the shipped envoy.yaml needs, every other field refused.
 *
 * Implemented filters: status_code_filter (ComparisonFilter EQ/GE/LE; NE only exists from Envoy
 * 1.37 on, so the 1.36 stand-in refuses it), header_filter (HeaderMatcher: string_match
 * exact/prefix, present_match, range_match, invert_match), response_flag_filter, and_filter,
 * or_filter. Body formats: text_format, json_format (nested objects allowed), content_type.
 */
import { UnsupportedConfigError } from '../errors.js';
import { compileFormat, type FormatTemplate } from '../formatter.js';
import type { Reader } from './reader.js';

export interface HeaderFilterMatcher {
  name: string;
  exact?: string;
  prefix?: string;
  present?: boolean;
  /** type.v3.Int64Range: start inclusive, end exclusive. */
  range?: { start: number; end: number };
  invert: boolean;
}

export type AccessLogFilterConfig =
  | { kind: 'status_code'; op: 'EQ' | 'GE' | 'LE'; value: number }
  | { kind: 'header'; matcher: HeaderFilterMatcher }
  | { kind: 'response_flag'; flags: string[] }
  | { kind: 'and' | 'or'; filters: AccessLogFilterConfig[] };

/** A json_format value: literals stay literals, strings are format templates, objects nest. */
export type JsonTemplate = { kind: 'literal'; value: number | boolean | null } | { kind: 'string'; t: FormatTemplate } | { kind: 'object'; fields: [string, JsonTemplate][] };

export interface BodyFormatConfig {
  text?: FormatTemplate;
  json?: JsonTemplate;
  contentType: string;
}

export interface ResponseMapperConfig {
  filter: AccessLogFilterConfig;
  statusCode?: number;
  body?: string;
  bodyFormatOverride?: BodyFormatConfig;
}

export interface LocalReplyConfig {
  mappers: ResponseMapperConfig[];
  bodyFormat?: BodyFormatConfig;
}

/** StreamInfo response flags by their long names (accesslog.proto ResponseFlagFilter.flags). */
const RESPONSE_FLAGS = ['NR', 'UH', 'UF', 'UO', 'URX', 'UT', 'NC', 'UC', 'UR', 'LR', 'DC', 'UMSDR', 'DPE', 'UPE'];

export function parseLocalReplyConfig(r: Reader): LocalReplyConfig {
  const mappers = r.children('mappers').map(parseMapper);
  const bf = r.child('body_format');
  const bodyFormat = bf ? parseBodyFormat(bf) : undefined;
  r.done();
  return { mappers, bodyFormat };
}

function parseMapper(r: Reader): ResponseMapperConfig {
  const f = r.child('filter');
  if (!f) throw new UnsupportedConfigError(`${r.at('filter')}: required`);
  const filter = parseFilter(f);
  const sc = r.num('status_code');
  if (sc !== undefined && (sc < 200 || sc >= 600)) throw new UnsupportedConfigError(`${r.at('status_code')}: must be in [200, 600)`);
  const b = r.child('body');
  let body: string | undefined;
  if (b) {
    body = b.str('inline_string');
    if (body === undefined) throw new UnsupportedConfigError(`${b.path}: only inline_string is supported`);
    b.done();
  }
  const o = r.child('body_format_override');
  const bodyFormatOverride = o ? parseBodyFormat(o) : undefined;
  r.done();
  return { filter, statusCode: sc, body, bodyFormatOverride };
}

function parseFilter(r: Reader): AccessLogFilterConfig {
  const keys = Object.keys(r.obj);
  if (keys.length !== 1) throw new UnsupportedConfigError(`${r.path}: exactly one filter kind is required`);
  let out: AccessLogFilterConfig;
  const sc = r.child('status_code_filter');
  const hf = r.child('header_filter');
  const rf = r.child('response_flag_filter');
  const and = r.child('and_filter');
  const or = r.child('or_filter');
  if (sc) {
    const c = sc.child('comparison');
    if (!c) throw new UnsupportedConfigError(`${sc.at('comparison')}: required`);
    const op = c.enumOf('op', ['EQ', 'GE', 'LE'] as const, 'EQ');
    const v = c.child('value');
    if (!v) throw new UnsupportedConfigError(`${c.at('value')}: required`);
    const value = v.num('default_value') ?? 0;
    // RuntimeUInt32.runtime_key (min_len 1): no runtime overrides in the stand-in.
    v.reqStr('runtime_key');
    v.done();
    c.done();
    sc.done();
    out = { kind: 'status_code', op, value };
  } else if (hf) {
    const h = hf.child('header');
    if (!h) throw new UnsupportedConfigError(`${hf.at('header')}: required`);
    const m: HeaderFilterMatcher = { name: h.reqStr('name').toLowerCase(), invert: h.bool('invert_match') };
    if (h.has('present_match')) m.present = h.bool('present_match');
    const sm = h.child('string_match');
    if (sm) {
      m.exact = sm.str('exact');
      m.prefix = sm.str('prefix');
      sm.done();
    }
    const rm = h.child('range_match');
    if (rm) {
      m.range = { start: rm.num('start') ?? 0, end: rm.num('end') ?? 0 };
      rm.done();
    }
    if (m.present === undefined && m.exact === undefined && m.prefix === undefined && m.range === undefined) {
      throw new UnsupportedConfigError(`${h.path}: present_match, string_match {exact|prefix} or range_match is required`);
    }
    h.done();
    hf.done();
    out = { kind: 'header', matcher: m };
  } else if (rf) {
    const flags = rf.strings('flags');
    for (const [i, f] of flags.entries()) if (!RESPONSE_FLAGS.includes(f)) throw new UnsupportedConfigError(`${rf.at('flags')}[${i}]: flag ${f} is not produced by the stand-in`);
    rf.done();
    out = { kind: 'response_flag', flags };
  } else if (and || or) {
    const x = (and ?? or)!;
    const filters = x.children('filters').map(parseFilter);
    // PGV: AndFilter/OrFilter.filters min_items 2.
    if (filters.length < 2) throw new UnsupportedConfigError(`${x.at('filters')}: at least 2 filters`);
    x.done();
    out = { kind: and ? 'and' : 'or', filters };
  } else {
    throw new UnsupportedConfigError(`${r.path}.${keys[0]}: filter kind not implemented by the stand-in`);
  }
  r.done();
  return out;
}

function parseBodyFormat(r: Reader): BodyFormatConfig {
  const text = r.str('text_format');
  const jf = r.raw('json_format');
  if ((text === undefined) === (jf === undefined)) throw new UnsupportedConfigError(`${r.path}: exactly one of text_format or json_format is supported`);
  // SubstitutionFormatString.content_type: default text/plain for text, application/json for JSON.
  const contentType = r.str('content_type') ?? (text !== undefined ? 'text/plain' : 'application/json');
  const out: BodyFormatConfig = { contentType };
  if (text !== undefined) out.text = compileFormat(text, r.at('text_format'));
  else out.json = compileJson(jf, r.at('json_format'));
  r.done();
  return out;
}

function compileJson(v: unknown, path: string): JsonTemplate {
  if (typeof v === 'string') return { kind: 'string', t: compileFormat(v, path) };
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return { kind: 'literal', value: v };
  if (typeof v === 'object' && !Array.isArray(v)) {
    return { kind: 'object', fields: Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, compileJson(x, `${path}.${k}`)]) };
  }
  throw new UnsupportedConfigError(`${path}: lists are not supported in json_format`);
}
