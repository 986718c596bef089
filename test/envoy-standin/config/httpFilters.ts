/**
 * HTTP filter entries, downstream (HCM) and upstream (cluster): ext_proc, router,
 * header_mutation, upstream_codec.
 */
import { UnsupportedConfigError } from '../errors.js';
import { compileFormat } from '../formatter.js';
import { parseExtProc } from './extProc.js';
import type { HeaderMutationOp, HttpFilterConfig } from './model.js';
import type { Reader } from './reader.js';

const EXT_PROC_TYPE = 'envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor';
export function parseHttpFilter(r: Reader, upstream: boolean): HttpFilterConfig {
  const name = r.reqStr('name');
  const t = r.child('typed_config');
  if (!t) throw new UnsupportedConfigError(`${r.at('typed_config')}: required`);
  const type = t.str('@type');
  let out: HttpFilterConfig;
  if (type === `type.googleapis.com/${EXT_PROC_TYPE}`) {
    out = { type: 'ext_proc', name, config: parseExtProc(t) };
  } else if (type === 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' && !upstream) {
    out = { type: 'router', name, suppressEnvoyHeaders: t.bool('suppress_envoy_headers') };
  } else if (type === 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation' && upstream) {
    out = parseHeaderMutationFilter(t, name);
  } else if (type === 'type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec' && upstream) {
    out = { type: 'upstream_codec', name };
  } else {
    throw new UnsupportedConfigError(`${t.at('@type')}: filter type ${String(type)} is not supported ${upstream ? 'upstream' : 'in the HCM'}`);
  }
  t.done();
  r.done();
  return out;
}

function parseHeaderMutationFilter(t: Reader, name: string): HttpFilterConfig {
  const m = t.child('mutations');
  const parseOps = (k: string): HeaderMutationOp[] =>
    (m ? m.children(k) : []).map((op) => {
      const app = op.child('append');
      const rem = op.str('remove');
      op.done();
      if (rem !== undefined) {
        return { kind: 'remove', key: rem.toLowerCase(), appendAction: 'APPEND_IF_EXISTS_OR_ADD', keepEmptyValue: false };
      }
      if (!app) throw new UnsupportedConfigError(`${op.path}: append or remove is required`);
      const h = app.child('header');
      if (!h) throw new UnsupportedConfigError(`${app.at('header')}: required`);
      const key = h.reqStr('key').toLowerCase();
      const value = compileFormat(h.str('value') ?? '', h.at('value'));
      h.done();
      const appendAction = app.enumOf(
        'append_action',
        ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'] as const,
        'APPEND_IF_EXISTS_OR_ADD',
      );
      const keepEmptyValue = app.bool('keep_empty_value');
      app.done();
      return { kind: 'append', key, value, appendAction, keepEmptyValue };
    });
  const request = parseOps('request_mutations');
  const response = parseOps('response_mutations');
  m?.done();
  return { type: 'header_mutation', name, request, response };
}
