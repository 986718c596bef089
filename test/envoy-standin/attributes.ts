/**
 * The subset of Envoy attribute expressions (CEL, docs/root/intro/arch_overview/advanced/
 * attributes.rst) that the stand-in evaluates for ext_proc `request_attributes` /
 * `response_attributes`. Anything else is refused when the config is loaded.
 *
 * Results go into ProcessingRequest.attributes["envoy.filters.http.ext_proc"], keyed by the exact
 * expression text (facts §2.10). As in ExpressionManager::evaluateAttributes, an expression that
 * fails to evaluate (e.g. a missing map key, no upstream host yet) is left out.
 */
import type { HeaderMap } from './headers.js';
import type { JsonObject, JsonValue } from './proto.js';
import { UnsupportedConfigError } from './errors.js';

export interface AttributeContext {
  requestHeaders?: HeaderMap;
  responseHeaders?: HeaderMap;
  routeName?: string;
  clusterName?: string;
  /** Endpoint metadata of the host chosen for this attempt (upstream filters only). */
  upstreamHostMetadata?: Record<string, JsonObject>;
}

export interface AttributeExpr {
  text: string;
  evaluate(ctx: AttributeContext): JsonValue | undefined;
}

/** ['a']['b'] → ['a', 'b'] */
function parseIndexChain(s: string): string[] | undefined {
  const keys: string[] = [];
  const re = /\[(?:'([^']*)'|"([^"]*)")\]/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(s)) !== null) {
    keys.push(m[1] ?? m[2] ?? '');
    last = re.lastIndex;
  }
  return last === s.length && keys.length > 0 ? keys : undefined;
}

function headerValue(h: HeaderMap | undefined, name: string): string | undefined {
  const all = h?.getAll(name) ?? [];
  return all.length > 0 ? all.join(',') : undefined;
}

export function compileAttribute(text: string, path: string): AttributeExpr {
  const mk = (evaluate: AttributeExpr['evaluate']): AttributeExpr => ({ text, evaluate });
  const req = /^request\.(path|url_path|host|scheme|method|id|protocol)$/.exec(text);
  if (req) {
    const f = req[1];
    return mk((c) => {
      const h = c.requestHeaders;
      if (!h) return undefined;
      switch (f) {
        case 'path':
          return h.get(':path');
        case 'url_path':
          return h.get(':path')?.split('?')[0];
        case 'host':
          return h.get(':authority');
        case 'scheme':
          return h.get(':scheme');
        case 'method':
          return h.get(':method');
        case 'id':
          return h.get('x-request-id');
        default:
          return 'HTTP/1.1';
      }
    });
  }
  const hdr = /^(request|response)\.headers(\[.*\])$/.exec(text);
  if (hdr) {
    const keys = parseIndexChain(hdr[2]!);
    if (keys?.length === 1) {
      const name = keys[0]!.toLowerCase();
      const dir = hdr[1];
      return mk((c) => headerValue(dir === 'request' ? c.requestHeaders : c.responseHeaders, name));
    }
  }
  if (text === 'response.code') {
    return mk((c) => {
      const s = c.responseHeaders?.get(':status');
      return s === undefined ? undefined : Number(s);
    });
  }
  if (text === 'xds.cluster_name') return mk((c) => c.clusterName);
  if (text === 'xds.route_name') return mk((c) => c.routeName);
  const md = /^xds\.upstream_host_metadata\.filter_metadata(\[.*\])$/.exec(text);
  if (md) {
    const keys = parseIndexChain(md[1]!);
    if (keys) {
      return mk((c) => {
        let cur: JsonValue | undefined = c.upstreamHostMetadata as JsonObject | undefined;
        for (const k of keys) {
          if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !(k in cur)) return undefined;
          cur = cur[k];
        }
        return cur;
      });
    }
  }
  throw new UnsupportedConfigError(`${path}: attribute expression ${JSON.stringify(text)} is not implemented by the stand-in`);
}
