/**
 * The admin page in a real headless browser (Debian's `chromium`): a gateway on
 * config/examples/usage.yaml (embedded ledger) behind the Envoy stand-in takes a scripted burst
 * from two callers through the OpenAI SDK; then chromium loads the page, and the DOM must hold
 * the diagram's SVG, live counts equal to the number of ledger rows, and cost tables equal to
 * what the ledger itself sums. The screenshot is kept in test/admin/artifacts/admin-page.png.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { startAdminServer, type AdminServer } from '../../extproc/admin/index.js';
import { ledgerServiceOf } from '../../extproc/admin/ledger.js';
import { adminOptionsSchema } from '../../extproc/admin/options.js';
import { LEDGER_TABLE } from '../../extproc/usage/ledgerSchema.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import { startE2E, type E2E } from '../e2e/helpers.js';
import { usageExampleConfig } from '../usage/helpers.js';

const run = promisify(execFile);
const artifacts = path.join(import.meta.dirname, 'artifacts');
const CHROMIUM = process.env['CHROMIUM'] ?? 'chromium';
const PLANTED_PROMPT = 'violet-walrus-kettle prompt text';

function exampleConfig(dataDir: string): Record<string, unknown> {
  const { config, usage } = usageExampleConfig(dataDir);
  usage.log = false;
  return config;
}

async function chromium(args: string[], profile: string): Promise<string> {
  const { stdout } = await run(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${profile}`, ...args], {
    timeout: 90_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

const dirs: string[] = [];
let e: E2E | undefined;
let admin: AdminServer | undefined;
afterAll(async () => {
  await admin?.close();
  await e?.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('admin page in headless chromium', () => {
  it('shows the diagram, live counts that match the ledger, and cost tables from the ledger', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-page-'));
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-chromium-'));
    dirs.push(dataDir, profile);
    e = await startE2E('openai', exampleConfig(dataDir));
    const gateway = e.gateway;
    admin = await startAdminServer(adminOptionsSchema.parse({ enabled: true, port: 0 }), { config: () => gateway.config, log: createLogger('error') });

    // The burst: 7 requests from team-a, 5 streamed ones from team-b.
    const burst = [...Array(7).fill('team-a'), ...Array(5).fill('team-b')] as string[];
    await Promise.all(
      burst.map(async (caller, i) => {
        const c = new OpenAI({ baseURL: `${e!.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-caller-id': caller } });
        const messages = [{ role: 'user' as const, content: `${PLANTED_PROMPT} ${i}` }];
        if (caller === 'team-a') await c.chat.completions.create({ model: 'gpt-4o', messages });
        else for await (const _ of await c.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } })) void _;
      }),
    );
    // Finish hooks run after the answer reached the client: wait for the twelfth record.
    const deadline = Date.now() + 30_000;
    while (admin.counts().requests < burst.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(admin.counts().requests).toBe(burst.length);

    const url = `http://127.0.0.1:${admin.port}/`;
    const dom = await chromium(['--dump-dom', url], profile);
    fs.mkdirSync(artifacts, { recursive: true });
    const shot = path.join(artifacts, 'admin-page.png');
    fs.rmSync(shot, { force: true });
    await chromium([`--screenshot=${shot}`, '--window-size=1600,1800', url], profile);

    // What the ledger itself holds (the gateway's own store: an embedded store has one owner).
    const store = await ledgerServiceOf(gateway.config)!.store;
    const rows = (await store.pool.query<{ caller: string; n: string; cost: string }>(`SELECT caller, count(*) AS n, sum(cost_micros) AS cost FROM ${LEDGER_TABLE} GROUP BY caller ORDER BY caller`)).rows;
    expect(rows.map((r) => [r.caller, Number(r.n)])).toEqual([['team-a', 7], ['team-b', 5]]);

    // The page rendered, with the diagram as inline SVG naming the chain.
    expect(dom).toContain('envoy-llm-gateway · admin');
    expect(dom).toMatch(/<svg[\s>]/);
    const svg = dom.slice(dom.indexOf('<svg'), dom.indexOf('</svg>'));
    for (const name of ['default-chain', 'claude-opus-4', 'gpt-4o', 'mistral-large', 'usage ledger']) expect(svg).toContain(name);
    // Live counts on the page and on the arrows equal the ledger's row count.
    expect(dom).toMatch(new RegExp(`data-count="requests">${burst.length}<`));
    expect(svg).toContain(`${burst.length} requests`);
    expect(svg).toContain(`${burst.length} records`);
    // Cost per caller: the page's figures are the ledger's sums.
    const callerTable = dom.slice(dom.indexOf('id="cost-by-caller"'), dom.indexOf('</table>', dom.indexOf('id="cost-by-caller"')));
    for (const r of rows) {
      const row = callerTable.split('<tr>').find((tr) => tr.includes(`>${r.caller}<`));
      expect(row, r.caller).toBeDefined();
      expect(row).toContain(`data-col="requests" class="n">${r.n}<`);
      expect(row).toContain(`data-micros="${Number(r.cost)}"`);
    }
    expect(Number(rows[0]!.cost)).toBeGreaterThan(0);
    // Last requests: one row per request, and no prompt text anywhere on the page.
    const recent = dom.slice(dom.indexOf('id="recent"'), dom.indexOf('</table>', dom.indexOf('id="recent"')));
    expect(recent.split('data-col="request_id"').length - 1).toBe(burst.length);
    expect(dom).not.toContain('violet-walrus');
    expect(dom).not.toContain('sk-test');

    const png = fs.readFileSync(shot);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.length).toBeGreaterThan(20_000);
  }, 180_000);

  it('serves nothing but reads: other methods are refused, unknown paths 404', async () => {
    expect(admin).toBeDefined();
    const base = `http://127.0.0.1:${admin!.port}`;
    expect((await fetch(`${base}/`, { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const status = (await (await fetch(`${base}/status.json`)).json()) as { requests: number };
    expect(status.requests).toBe(12);
    const svg = await fetch(`${base}/diagram.svg`);
    expect(svg.headers.get('content-type')).toBe('image/svg+xml');
    expect(await svg.text()).toMatch(/^<svg/);
  });
});
