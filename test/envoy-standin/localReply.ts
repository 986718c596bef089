/**
 * LocalReplyImpl::rewrite (source/common/local_reply/local_reply.cc) with the access-log filters of
 * its mappers (source/common/access_log/access_log_impl.cc), applied by the HCM's filter manager
 * to every local reply it sends (Http::Utility::prepareLocalReply calls the `rewrite` callback
 * after the reply's own header modifications):
 *
 * 1. the response code is set on the headers and StreamInfo (status_code filters read it);
 * 2. the first mapper whose filter matches may replace the status code and the body and supplies
 *    its `body_format_override`; later mappers are not consulted;
 * 3. the body is rendered by that format, else the top-level `body_format`, else unchanged
 *    (`%LOCAL_REPLY_BODY%`, text/plain); `%LOCAL_REPLY_BODY%` is the body before formatting.
 *
 * The caller then sets content-type from the format when the body changed or none was set.
 */
import type { AccessLogFilterConfig, BodyFormatConfig, JsonTemplate, LocalReplyConfig } from './config/index.js';
import type { FormatContext } from './formatter.js';
import type { HeaderMap } from './headers.js';
import type { JsonValue } from './proto.js';

export interface LocalReplyRewrite {
  code: number;
  body: Buffer;
  /** The format's content type; undefined when no format applied (the default text/plain). */
  contentType?: string;
}

export function evalFilter(f: AccessLogFilterConfig, req: HeaderMap | undefined, code: number, flags: readonly string[]): boolean {
  switch (f.kind) {
    case 'status_code':
      // StatusCodeFilter::evaluate compares StreamInfo's response code (ComparisonFilter).
      return f.op === 'EQ' ? code === f.value : f.op === 'GE' ? code >= f.value : code <= f.value;
    case 'header': {
      // HeaderFilter: HeaderUtility::matchHeaders on the request headers (pseudo-headers included).
      const m = f.matcher;
      const values = req?.getAll(m.name) ?? [];
      let r: boolean;
      if (m.present !== undefined) r = values.length > 0 === m.present;
      else if (values.length === 0) return false; // a missing header never matches, even inverted
      else {
        const v = values.join(',');
        if (m.exact !== undefined) r = v === m.exact;
        else if (m.prefix !== undefined) r = v.startsWith(m.prefix);
        else {
          const n = /^-?\d+$/.test(v) ? Number(v) : NaN;
          r = !Number.isNaN(n) && n >= m.range!.start && n < m.range!.end;
        }
      }
      return m.invert ? !r : r;
    }
    case 'response_flag':
      // ResponseFlagFilter: with no flags listed, any flag matches.
      return f.flags.length === 0 ? flags.length > 0 : f.flags.some((x) => flags.includes(x));
    case 'and':
      return f.filters.every((x) => evalFilter(x, req, code, flags));
    case 'or':
      return f.filters.some((x) => evalFilter(x, req, code, flags));
  }
}

function renderJson(t: JsonTemplate, c: FormatContext): JsonValue {
  if (t.kind === 'literal') return t.value;
  if (t.kind === 'string') return t.t.render(c, 'json');
  const o: Record<string, JsonValue> = {};
  for (const [k, v] of t.fields) o[k] = renderJson(v, c);
  return o;
}

/** BodyFormatter::format: text as rendered; JSON followed by a newline, as JsonFormatterImpl does. */
function renderBody(f: BodyFormatConfig, c: FormatContext): Buffer {
  if (f.text) return Buffer.from(String(f.text.render(c, 'header')), 'utf8');
  return Buffer.from(`${JSON.stringify(renderJson(f.json!, c))}\n`);
}

export function rewriteLocalReply(
  cfg: LocalReplyConfig,
  req: HeaderMap | undefined,
  code: number,
  body: Buffer,
  ctx: FormatContext,
  flags: readonly string[],
): LocalReplyRewrite {
  let format: BodyFormatConfig | undefined;
  let outCode = code;
  let outBody = body;
  for (const m of cfg.mappers) {
    if (!evalFilter(m.filter, req, code, flags)) continue;
    // ResponseMapper::matchAndRewrite
    if (m.body !== undefined) outBody = Buffer.from(m.body, 'utf8');
    if (m.statusCode !== undefined) outCode = m.statusCode;
    format = m.bodyFormatOverride;
    break;
  }
  format ??= cfg.bodyFormat;
  if (!format) return { code: outCode, body: outBody };
  const c: FormatContext = { ...ctx, responseCode: outCode, localReplyBody: outBody.toString('utf8'), responseFlags: [...flags] };
  return { code: outCode, body: renderBody(format, c), contentType: format.contentType };
}
