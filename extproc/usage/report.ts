/**
 * @module usage/report
 * `report`: the ledger's cost views for a date range. Terminal tables (per caller, per model,
 * per day), `--csv` for one of them, `--svg FILE` for a chart of daily cost per caller.
 *
 *   report --config FILE | --store-dir DIR | --database-url URL
 *          [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--by caller|model|day] [--csv] [--svg FILE]
 *
 * The store comes from the usage stage of `--config` (its `ledger.store`), or is named directly.
 * An embedded store belongs to one process: run the report against a stopped gateway's data
 * directory, or point the gateway and the report at Postgres.
 */
import { writeFileSync } from 'node:fs';
import { loadConfigFile } from '../config/load.js';
import { formatMicros } from '../pricing/index.js';
import { openStore, type Store, type StoreConfig } from '../store/index.js';
import { dailyCostSvg, type DailyCost } from './chart.js';
import { LEDGER_VIEWS } from './ledgerSchema.js';
import { usageOptionsSchema } from './options.js';

export interface ReportIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env?: NodeJS.ProcessEnv;
  /** Today (YYYY-MM-DD, UTC) for the default range. */
  today?: string;
}

const USAGE = `usage: report (--config FILE | --store-dir DIR | --database-url URL) [--from YYYY-MM-DD] [--to YYYY-MM-DD]
              [--by caller|model|day] [--csv] [--svg FILE]
  --config FILE        read the ledger store from the usage stage of this gateway config
  --store-dir DIR      an embedded (PGlite) ledger directory (the gateway must not be running on it)
  --database-url URL   a Postgres ledger
  --from, --to         UTC days, inclusive (default: the last 30 days)
  --by                 one table (default: all three; --csv defaults to caller)
  --csv                print the table as CSV
  --svg FILE           write a chart of daily cost per caller
`;

type By = 'caller' | 'model' | 'day';
interface Table {
  columns: string[];
  rows: (string | number)[][];
  /** Columns holding micro-dollars (printed as USD). */
  money: Set<string>;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

const QUERIES: Record<By, { sql: string; columns: string[] }> = {
  caller: {
    sql: `SELECT caller, sum(requests) AS requests, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
            sum(cached_input_tokens) AS cached_input_tokens, sum(cost_micros) AS cost_micros, sum(saved_micros) AS saved_micros, sum(errors) AS errors
          FROM ${LEDGER_VIEWS.byCallerDay} WHERE day BETWEEN $1::date AND $2::date GROUP BY caller ORDER BY sum(cost_micros) DESC, caller`,
    columns: ['caller', 'requests', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'cost_micros', 'saved_micros', 'errors'],
  },
  model: {
    sql: `SELECT model, provider, sum(requests) AS requests, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
            sum(cached_input_tokens) AS cached_input_tokens, sum(cost_micros) AS cost_micros, sum(errors) AS errors
          FROM ${LEDGER_VIEWS.byModelDay} WHERE day BETWEEN $1::date AND $2::date GROUP BY model, provider ORDER BY sum(cost_micros) DESC, model`,
    columns: ['model', 'provider', 'requests', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'cost_micros', 'errors'],
  },
  day: {
    sql: `SELECT day::text AS day, requests, input_tokens, output_tokens, cached_input_tokens, cost_micros, saved_micros, cache_hits, errors
          FROM ${LEDGER_VIEWS.byDay} WHERE day BETWEEN $1::date AND $2::date ORDER BY day`,
    columns: ['day', 'requests', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'cost_micros', 'saved_micros', 'cache_hits', 'errors'],
  },
};

function money(columns: string[]): Set<string> {
  return new Set(columns.filter((c) => c.endsWith('_micros')));
}

/** USD column headers: `cost_micros` → `cost_usd`. */
function header(c: string, m: Set<string>): string {
  return m.has(c) ? c.replace(/_micros$/, '_usd') : c;
}

function cellText(v: string | number, isMoney: boolean): string {
  return isMoney ? formatMicros(Number(v)) : String(v);
}

/** A fixed-width text table. */
export function formatTable(t: Table): string {
  const head = t.columns.map((c) => header(c, t.money));
  const body = t.rows.map((r) => r.map((v, i) => cellText(v, t.money.has(t.columns[i]!))));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const numeric = t.columns.map((_, i) => t.rows.every((r) => typeof r[i] === 'number' || /^-?\d+(\.\d+)?$/.test(String(r[i]))) && t.rows.length > 0);
  const line = (cells: string[]): string => cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n') + '\n';
}

/** RFC 4180 CSV. */
export function formatCsv(t: Table): string {
  const q = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [t.columns.map((c) => header(c, t.money)).map(q).join(',')];
  for (const r of t.rows) lines.push(r.map((v, i) => q(cellText(v, t.money.has(t.columns[i]!)))).join(','));
  return lines.join('\n') + '\n';
}

/** One of the cost views for [from, to]. */
export async function reportTable(store: Store, by: By, from: string, to: string): Promise<Table> {
  const q = QUERIES[by];
  const res = await store.pool.query<Record<string, string | number | null>>(q.sql, [from, to]);
  const rows = res.rows.map((r) => q.columns.map((c) => {
    const v = r[c];
    return v === null || v === undefined ? '' : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  }));
  return { columns: q.columns, rows, money: money(q.columns) };
}

/** Daily cost per caller for the chart. */
export async function dailyCostPerCaller(store: Store, from: string, to: string): Promise<DailyCost[]> {
  const r = await store.pool.query<{ day: string; caller: string; cost_micros: string }>(
    `SELECT day::text AS day, caller, cost_micros FROM ${LEDGER_VIEWS.byCallerDay} WHERE day BETWEEN $1::date AND $2::date ORDER BY day, caller`,
    [from, to],
  );
  return r.rows.map((x) => ({ day: x.day, caller: x.caller, costMicros: Number(x.cost_micros) }));
}

/** The ledger store named by the arguments. */
async function storeConfigOf(args: { config?: string; storeDir?: string; databaseUrl?: string }, env: NodeJS.ProcessEnv): Promise<StoreConfig> {
  if (args.storeDir) return { kind: 'embedded', dataDir: args.storeDir, restartOnCrash: false };
  if (args.databaseUrl) return { kind: 'postgres', url: args.databaseUrl };
  const config = await loadConfigFile(args.config!, env);
  const entry = config.pipeline.stages.find((s) => (typeof s === 'string' ? s : s.name) === 'usage');
  if (entry === undefined) throw new Error(`${args.config}: no usage stage in pipeline.stages`);
  const raw: Record<string, unknown> = typeof entry === 'string' ? {} : { ...(entry as Record<string, unknown>) };
  for (const common of ['name', 'failure', 'timeoutMs']) delete raw[common];
  const options = usageOptionsSchema.parse(raw);
  if (options.ledger === false) throw new Error(`${args.config}: the usage stage has no ledger (ledger: false)`);
  const s = options.ledger.store;
  return s.kind === 'embedded' ? { kind: 'embedded', dataDir: s.dataDir, restartOnCrash: false } : { kind: 'postgres', url: s.url };
}

/** The `report` subcommand; resolves with the exit code. */
export async function reportCommand(argv: readonly string[], io: ReportIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) }): Promise<number> {
  const args: { config?: string; storeDir?: string; databaseUrl?: string; from?: string; to?: string; by?: By; csv: boolean; svg?: string } = { csv: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    try {
      switch (flag) {
        case '--config': args.config = value(); break;
        case '--store-dir': args.storeDir = value(); break;
        case '--database-url': args.databaseUrl = value(); break;
        case '--from': args.from = value(); break;
        case '--to': args.to = value(); break;
        case '--svg': args.svg = value(); break;
        case '--csv': args.csv = true; break;
        case '--by': {
          const v = value();
          if (v !== 'caller' && v !== 'model' && v !== 'day') throw new UsageError(`--by must be caller, model or day, got "${v}"`);
          args.by = v;
          break;
        }
        case '--help': case '-h': io.stdout(USAGE); return 0;
        default: throw new UsageError(`unknown argument "${a}"`);
      }
    } catch (err) {
      io.stderr(`report: ${(err as Error).message}\n${USAGE}`);
      return 2;
    }
  }
  const sources = [args.config, args.storeDir, args.databaseUrl].filter((s) => s !== undefined).length;
  if (sources !== 1) {
    io.stderr(`report: give exactly one of --config, --store-dir, --database-url\n${USAGE}`);
    return 2;
  }
  const today = io.today ?? new Date().toISOString().slice(0, 10);
  const to = args.to ?? today;
  const from = args.from ?? new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10);
  for (const [k, v] of [['--from', from], ['--to', to]] as const) {
    if (!DAY.test(v) || Number.isNaN(Date.parse(`${v}T00:00:00Z`))) {
      io.stderr(`report: ${k} must be a day YYYY-MM-DD, got "${v}"\n`);
      return 2;
    }
  }
  if (from > to) {
    io.stderr(`report: --from ${from} is after --to ${to}\n`);
    return 2;
  }

  let store: Store | undefined;
  try {
    store = await openStore(await storeConfigOf(args, io.env ?? process.env));
    await store.migrate();
    if (args.csv) {
      io.stdout(formatCsv(await reportTable(store, args.by ?? 'caller', from, to)));
    } else {
      const bys: By[] = args.by ? [args.by] : ['caller', 'model', 'day'];
      let text = `Usage ${from} to ${to} (UTC days)\n`;
      for (const by of bys) text += `\nby ${by}\n${formatTable(await reportTable(store, by, from, to))}`;
      io.stdout(text);
    }
    if (args.svg) {
      writeFileSync(args.svg, dailyCostSvg(await dailyCostPerCaller(store, from, to), from, to));
      io.stderr(`report: wrote ${args.svg}\n`);
    }
    return 0;
  } catch (err) {
    io.stderr(`report: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store?.close();
  }
}

class UsageError extends Error {}
