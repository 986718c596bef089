/**
 * @module admin/page
 * The admin page as one server-rendered HTML document: live counts, the diagram (inline SVG with
 * the counts on its arrows), cost per caller / model / day from the ledger, and the last
 * requests' records. Every value is HTML-escaped; no script, so the page's CSP forbids all.
 */
import { formatMicros } from '../pricing/index.js';
import { cacheText, type CountsSnapshot } from './counts.js';
import type { CostTable, RecentRecord } from './ledger.js';

export interface PageData {
  readonly version: string;
  readonly generatedAt: string;
  readonly stages: readonly string[];
  readonly routes: number;
  readonly counts: CountsSnapshot;
  /** Inline SVG (Graphviz), or the Mermaid source with why there is no SVG. */
  readonly diagram: { svg: string } | { mermaid: string; problem: string };
  readonly ledger:
    | { from: string; to: string; tables: Record<'caller' | 'model' | 'day', CostTable>; recent: readonly RecentRecord[] }
    | { problem: string };
}

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function table(id: string, t: CostTable): string {
  const head = t.columns.map((c) => `<th>${esc(t.money.has(c) ? c.replace(/_micros$/, '_usd') : c)}</th>`).join('');
  const rows = t.rows
    .map((r) => `<tr>${r.map((v, i) => {
      const col = t.columns[i]!;
      const money = t.money.has(col);
      return `<td data-col="${esc(col)}"${money ? ` data-micros="${esc(v)}"` : ''}${typeof v === 'number' ? ' class="n"' : ''}>${esc(money ? formatMicros(Number(v)) : v)}</td>`;
    }).join('')}</tr>`)
    .join('\n');
  return `<table id="${esc(id)}"><thead><tr>${head}</tr></thead><tbody>\n${rows || `<tr><td colspan="${t.columns.length}">no requests in this range</td></tr>`}\n</tbody></table>`;
}

function recentTable(records: readonly RecentRecord[]): string {
  const cols = ['started', 'request id', 'caller', 'route', 'served model', 'provider', 'attempts', 'fallback path', 'in tok', 'out tok', 'cost usd', 'cache', 'pii', 'rate limit', 'status', 'latency ms'];
  const rows = records.map((r) => {
    const cells: [string, unknown, boolean?][] = [
      ['started', r.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')],
      ['request_id', r.requestId],
      ['caller', r.caller ?? ''],
      ['route', r.route ?? ''],
      ['served_model', r.servedModel ?? ''],
      ['provider', r.provider ?? ''],
      ['attempts', r.attempts, true],
      ['fallback_path', r.fallbackPath ?? ''],
      ['input_tokens', r.inputTokens, true],
      ['output_tokens', r.outputTokens, true],
      ['cost', formatMicros(r.costMicros), true],
      ['cache', r.cache ?? ''],
      ['pii', r.piiEntities, true],
      ['rate_limit', r.rateLimit ?? ''],
      ['status', r.status ?? '', true],
      ['latency_ms', Math.round(r.latencyMs), true],
    ];
    return `<tr${r.errorClass ? ' class="err"' : ''}>${cells.map(([k, v, n]) => `<td data-col="${k}"${n ? ' class="n"' : ''}>${esc(v)}</td>`).join('')}</tr>`;
  });
  return `<table id="recent"><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n') || `<tr><td colspan="${cols.length}">no requests yet</td></tr>`}\n</tbody></table>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#23395d;color:#fff;padding:10px 20px}header h1{font-size:18px;margin:0}header p{margin:2px 0 0;opacity:.85;font-size:12px}
main{padding:12px 20px}section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;margin-bottom:14px}
h2{font-size:15px;margin:0 0 8px}
#live{display:flex;flex-wrap:wrap;gap:10px;margin:0}#live div{border:1px solid #dde;border-radius:6px;padding:6px 12px;min-width:120px;background:#f5f7ff}
#live dt{font-size:11px;color:#556;text-transform:uppercase}#live dd{margin:0;font-size:20px;font-weight:600}
#diagram{overflow-x:auto}#diagram svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:12px;margin:4px 0 10px}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left}th{background:#f0f0f0}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.err td{background:#fff0f0}
.tables{display:flex;flex-wrap:wrap;gap:18px}.note{color:#a33}`;

/** The whole page. */
export function renderPage(d: PageData): string {
  const c = d.counts;
  const live: [string, string, string | number][] = [
    ['requests', 'requests', c.requests],
    ['cache', 'cache hit rate', cacheText(c).replace(/^hit rate /, '')],
    ['pii', 'PII redacted', c.piiRedacted],
    ['ratelimited', '429 (rate limit)', c.rateLimited],
    ['upstream429', '429 (providers)', c.upstream429],
    ['fallbacks', 'fallbacks', Object.values(c.fallbacks).reduce((a, b) => a + b, 0)],
    ['errors', 'errors', c.errors],
  ];
  const diagram = 'svg' in d.diagram ? d.diagram.svg : `<p class="note">${esc(d.diagram.problem)}</p><pre>${esc(d.diagram.mermaid)}</pre>`;
  const ledger =
    'problem' in d.ledger
      ? `<p class="note">${esc(d.ledger.problem)}</p>`
      : `<p>UTC days ${esc(d.ledger.from)} to ${esc(d.ledger.to)}, from the ledger views.</p>
<div class="tables"><div><h3>per caller</h3>${table('cost-by-caller', d.ledger.tables.caller)}</div>
<div><h3>per model</h3>${table('cost-by-model', d.ledger.tables.model)}</div>
<div><h3>per day</h3>${table('cost-by-day', d.ledger.tables.day)}</div></div>`;
  const recent = 'problem' in d.ledger ? '' : recentTable(d.ledger.recent);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LLM gateway · admin</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style></head>
<body>
<header><h1>envoy-llm-gateway · admin</h1><p>version ${esc(d.version)} · ${esc(d.stages.length)} stages (${esc(d.stages.join(' → ') || 'none')}) · ${esc(d.routes)} routes · generated ${esc(d.generatedAt)} · read-only</p></header>
<main>
<section><h2>Live counts since start</h2><dl id="live">${live.map(([k, label, v]) => `<div><dt>${esc(label)}</dt><dd data-count="${k}">${esc(v)}</dd></div>`).join('')}</dl></section>
<section><h2>The gateway as configured</h2><div id="diagram">${diagram}</div></section>
<section><h2>Cost</h2>${ledger}</section>
<section><h2>Last requests</h2>${recent || '<p>no ledger</p>'}</section>
</main></body></html>
`;
}
