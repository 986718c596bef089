/**
 * @module admin/server
 * The admin page's HTTP server (node:http, GET only): `/` the page, `/diagram.svg` the live
 * diagram, `/status.json` the live counts. Read-only by construction: nothing it serves changes
 * the gateway. Bound to `options.host` (127.0.0.1 by default).
 *
 * Counts come from the records the gateway's ledger admits (`onLedgerRecord`), the tables from
 * the ledger views; before reading them a page load flushes the ledger's queue (bounded wait),
 * so the tables include the requests the counts already show.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig } from '../config/schema.js';
import { buildDiagram, renderGraphviz, toDot, toMermaid } from '../diagram/index.js';
import type { Logger } from '../telemetry/logger.js';
import { describeError } from '../telemetry/logger.js';
import { onLedgerRecord } from '../usage/sinks.js';
import { version as VERSION } from '../version.js';
import { LiveCounts, edgeCount, type CountsSnapshot } from './counts.js';
import { costTables, ledgerServiceOf, recentRecords } from './ledger.js';
import type { AdminOptions } from './options.js';
import { renderPage, type PageData } from './page.js';

export interface AdminDeps {
  /** The config in force (read on every page load: a reload shows at once). */
  readonly config: () => GatewayConfig;
  readonly log: Logger;
  /** Graphviz `dot` command (default `dot`, or env GRAPHVIZ_DOT). */
  readonly graphviz?: string;
  /** Today, for the cost tables' range (tests); default the current UTC day. */
  readonly today?: () => string;
  /** Days in the cost tables (default 30). */
  readonly days?: number;
}

export interface AdminServer {
  readonly port: number;
  /** Live counts since start. */
  counts(): CountsSnapshot;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** Starts the admin page; resolves once it listens. */
export async function startAdminServer(options: AdminOptions, deps: AdminDeps): Promise<AdminServer> {
  const counts = new LiveCounts(deps.config);
  const unsubscribe = onLedgerRecord((record, ledger) => {
    if (ledger === ledgerServiceOf(deps.config())) counts.add(record);
  });
  const graphviz = deps.graphviz ?? process.env['GRAPHVIZ_DOT'] ?? 'dot';
  const days = deps.days ?? 30;

  const diagramSvg = async (config: GatewayConfig, snapshot: CountsSnapshot): Promise<string> => {
    const svg = (await renderGraphviz(toDot(buildDiagram(config), (key) => edgeCount(snapshot, key)), 'svg', graphviz)).toString('utf8');
    // Inline in HTML: drop the XML prolog and DOCTYPE.
    return svg.slice(svg.indexOf('<svg'));
  };

  const page = async (): Promise<string> => {
    const config = deps.config();
    const snapshot = counts.snapshot();
    let diagram: PageData['diagram'];
    try {
      diagram = { svg: await diagramSvg(config, snapshot) };
    } catch (err) {
      diagram = { mermaid: toMermaid(buildDiagram(config), (key) => edgeCount(snapshot, key)), problem: `no SVG: ${describeError(err)}` };
    }
    let ledger: PageData['ledger'];
    const service = ledgerServiceOf(config);
    if (!service) ledger = { problem: 'no usage ledger in this config (add the usage stage with a ledger)' };
    else {
      try {
        const store = await service.store;
        await Promise.race([service.writer.flush(), new Promise((r) => setTimeout(r, 2000).unref())]);
        const to = deps.today?.() ?? new Date().toISOString().slice(0, 10);
        const from = new Date(Date.parse(`${to}T00:00:00Z`) - (days - 1) * 86_400_000).toISOString().slice(0, 10);
        ledger = { from, to, tables: await costTables(store, from, to), recent: await recentRecords(store, options.recentRecords) };
      } catch (err) {
        ledger = { problem: `ledger unavailable: ${describeError(err)}` };
      }
    }
    const stages = config.pipeline.stages.map((s) => (typeof s === 'string' ? s : s.name));
    return renderPage({ version: VERSION, generatedAt: new Date().toISOString(), stages, routes: config.routes.length, counts: snapshot, diagram, ledger });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', ...SECURITY_HEADERS }).end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') {
      const html = await page();
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS }).end(html);
    } else if (path === '/diagram.svg') {
      const svg = await diagramSvg(deps.config(), counts.snapshot());
      res.writeHead(200, { 'content-type': 'image/svg+xml', ...SECURITY_HEADERS }).end(svg);
    } else if (path === '/status.json') {
      res.writeHead(200, { 'content-type': 'application/json', ...SECURITY_HEADERS }).end(JSON.stringify(counts.snapshot()));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain', ...SECURITY_HEADERS }).end('not found\n');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      deps.log.warn('admin page failed', { error: describeError(err) });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain', ...SECURITY_HEADERS });
      res.end('internal error\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  deps.log.info('admin page listening', { host: options.host, port });
  return {
    port,
    counts: () => counts.snapshot(),
    async close() {
      unsubscribe();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
