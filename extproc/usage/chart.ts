/**
 * @module usage/chart
 * A hand-written SVG stacked bar chart of daily cost per caller (no charting dependency): one
 * bar per day, one colour per caller, a legend and a dollar axis. Text is XML-escaped (caller
 * ids come from headers and certificates).
 */
import { formatMicros } from '../pricing/index.js';

export interface DailyCost {
  /** YYYY-MM-DD */
  readonly day: string;
  readonly caller: string;
  readonly costMicros: number;
}

const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function esc(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Every day from `from` to `to` inclusive (UTC). */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

/** A "nice" axis maximum ≥ v (1, 2 or 5 × 10^n). */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** The SVG document. Callers beyond the 9 most expensive are summed as "other". */
export function dailyCostSvg(rows: readonly DailyCost[], from: string, to: string, title = 'Daily cost per caller (USD)'): string {
  const days = daysBetween(from, to);
  const totals = new Map<string, number>();
  for (const r of rows) totals.set(r.caller, (totals.get(r.caller) ?? 0) + r.costMicros);
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([c]) => c);
  const shown = ranked.length > 10 ? [...ranked.slice(0, 9), 'other'] : ranked;
  const keyOf = (caller: string): string => (shown.includes(caller) ? caller : 'other');
  const cell = new Map<string, number>();
  for (const r of rows) {
    const k = `${r.day}\u0000${keyOf(r.caller)}`;
    cell.set(k, (cell.get(k) ?? 0) + r.costMicros);
  }
  const dayTotal = days.map((d) => shown.reduce((s, c) => s + (cell.get(`${d}\u0000${c}`) ?? 0), 0));
  const maxMicros = niceMax(Math.max(0, ...dayTotal) / 1e6) * 1e6;

  const W = 900, H = 420, left = 80, right = 200, top = 40, bottom = 70;
  const plotW = W - left - right, plotH = H - top - bottom;
  const slot = plotW / Math.max(1, days.length);
  const barW = Math.max(1, slot * 0.7);
  const y = (micros: number): number => top + plotH - (micros / maxMicros) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${left}" y="24" font-size="15" font-weight="bold">${esc(title)}: ${esc(from)} to ${esc(to)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (maxMicros * i) / 4;
    const yy = y(v).toFixed(1);
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">$${formatMicros(Math.round(v)).replace(/0{1,4}$/, '')}</text>`);
  }
  const labelEvery = Math.ceil(days.length / 15);
  days.forEach((d, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let acc = 0;
    shown.forEach((c, ci) => {
      const v = cell.get(`${d}\u0000${c}`) ?? 0;
      if (v <= 0) return;
      const y1 = y(acc + v), y0 = y(acc);
      parts.push(`<rect x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${barW.toFixed(1)}" height="${Math.max(0.5, y0 - y1).toFixed(1)}" fill="${COLORS[ci % COLORS.length]}"><title>${esc(d)} ${esc(c)}: $${formatMicros(v)}</title></rect>`);
      acc += v;
    });
    if (i % labelEvery === 0) parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${top + plotH + 14}" text-anchor="end" transform="rotate(-45 ${(x + barW / 2).toFixed(1)} ${top + plotH + 14})">${esc(d)}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`, `<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`);
  shown.forEach((c, ci) => {
    const ly = top + ci * 20;
    parts.push(`<rect x="${left + plotW + 16}" y="${ly}" width="12" height="12" fill="${COLORS[ci % COLORS.length]}"/>`);
    parts.push(`<text x="${left + plotW + 34}" y="${ly + 10}">${esc(c.length > 26 ? `${c.slice(0, 25)}…` : c)}</text>`);
  });
  if (shown.length === 0) parts.push(`<text x="${left + plotW / 2}" y="${top + plotH / 2}" text-anchor="middle" fill="#888">no usage in this range</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
