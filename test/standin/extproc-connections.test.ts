/**
 * The ext_proc cluster's connection pool: `max_requests_per_connection`
 * (HttpProtocolOptions.common_http_protocol_options) moves an HTTP/2 connection to draining after N
 * gRPC streams; later streams open a new connection, and the drained one closes once its own
 * streams are done (conn_pool_base.cc attachStreamToClient / onStreamClosed). The shipped config
 * sets 900 to stay under the ~1000 stream resets after which a Node HTTP/2 server drops the
 * connection (Envoy ends every ext_proc stream with RST_STREAM).
 *
 * Connections are counted by a TCP proxy between the stand-in and the scripted ext_proc server;
 * the server sees each proxied connection as its own peer address.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseBootstrap } from '../envoy-standin/config/index.js';
import {
  autoRespond,
  continueFor,
  json,
  request,
  sleep,
  standinFor,
  startScriptedExtProc,
  startUpstream,
  testBootstrap,
  until,
  type ScriptedExtProc,
  type TestConfig,
} from './helpers.js';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** Counts TCP connections to `target` and which of them are closed. */
interface ConnectionCounter {
  address: string;
  accepted: number;
  closed: number;
  close(): Promise<void>;
}

async function countingProxy(target: string): Promise<ConnectionCounter> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<net.Socket>();
  const counter = { accepted: 0, closed: 0 };
  const server = net.createServer((client) => {
    counter.accepted++;
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      counter.closed++;
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get accepted() {
      return counter.accepted;
    },
    get closed() {
      return counter.closed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Request headers only: each stream ends (half-close + cancel) after its one answer. */
const headersOnly: TestConfig = { extProc: { processing_mode: { response_header_mode: 'SKIP' } } };

/** The test bootstrap with `common_http_protocol_options` on the ext_proc cluster. */
function withLimit(limit: number | undefined): Record<string, unknown> {
  const doc = testBootstrap(headersOnly) as Record<string, any>;
  const c = doc.static_resources.clusters.find((x: any) => x.name === 'ext_proc');
  const po = c.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  if (limit !== undefined) po.common_http_protocol_options = { max_requests_per_connection: limit };
  return doc;
}

async function setup(limit: number | undefined, script: Parameters<typeof startScriptedExtProc>[0] = autoRespond()) {
  const ep: ScriptedExtProc = await startScriptedExtProc(script);
  const proxy = await countingProxy(ep.address);
  const up = await startUpstream((_r, res) => json(res, 200, { ok: true }));
  const envoy = await standinFor({ ...ep, address: proxy.address }, up.url, headersOnly, { bootstrap: withLimit(limit) });
  cleanup.push(
    () => envoy.close(),
    () => proxy.close(),
    () => ep.close(),
    () => up.close(),
  );
  return { ep, proxy, envoy };
}

/** The peer address (host:port) the ext_proc server saw for each stream, in arrival order. */
const peers = (ep: ScriptedExtProc) => ep.streams.map((s) => s.peer);

describe('max_requests_per_connection on the ext_proc cluster', () => {
  it('parses HttpProtocolOptions.common_http_protocol_options.max_requests_per_connection', () => {
    expect(parseBootstrap(withLimit(3)).clusters.get('ext_proc')!.maxRequestsPerConnection).toBe(3);
    expect(parseBootstrap(withLimit(undefined)).clusters.get('ext_proc')!.maxRequestsPerConnection).toBe(0);
    expect(() => parseBootstrap(withLimit(-1))).toThrow(/max_requests_per_connection: expected a uint32/);
  });

  it('opens a new connection after N streams (N+1 requests → 2 connections) and closes the drained one', async () => {
    const { ep, proxy, envoy } = await setup(3);
    for (let i = 0; i < 4; i++) expect((await request(`${envoy.url}/x`)).status).toBe(200);
    expect(ep.streams).toHaveLength(4);
    const p = peers(ep);
    expect(p[0]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(new Set(p.slice(0, 3)).size).toBe(1);
    expect(p[3]).not.toBe(p[0]);
    expect(proxy.accepted).toBe(2);
    // The first connection had no stream left: it is closed; the second stays open for more.
    await until(() => proxy.closed === 1);
    await sleep(50);
    expect(proxy.closed).toBe(1);
    expect(envoy.stats.counter('cluster.ext_proc.upstream_cx_total')).toBe(2);
    expect(envoy.stats.counter('cluster.ext_proc.upstream_cx_max_requests')).toBe(1);
    expect(envoy.stats.counter('cluster.ext_proc.upstream_cx_destroy_local')).toBe(1);
    // 3 more streams fill the second connection: a third one is opened for the 7th.
    for (let i = 0; i < 3; i++) expect((await request(`${envoy.url}/x`)).status).toBe(200);
    expect(proxy.accepted).toBe(3);
    expect(new Set(peers(ep)).size).toBe(3);
    ep.assertNoScriptErrors();
  });

  it('keeps a draining connection open until its last stream ends', async () => {
    let releaseHeld!: () => void;
    const held = new Promise<void>((r) => (releaseHeld = r));
    const { ep, proxy, envoy } = await setup(3, async (s, index) => {
      const m = await s.next();
      if (index < 3) await held; // the first three streams wait
      s.send(continueFor(m));
    });
    const responses = [0, 1, 2].map(() => request(`${envoy.url}/x`));
    await until(() => ep.streams.length === 3);
    // The 4th request goes to a new connection while the first still carries 3 streams.
    expect((await request(`${envoy.url}/x`)).status).toBe(200);
    expect(proxy.accepted).toBe(2);
    expect(peers(ep)[3]).not.toBe(peers(ep)[0]);
    await sleep(50);
    expect(proxy.closed).toBe(0);
    releaseHeld();
    for (const r of await Promise.all(responses)) expect(r.status).toBe(200);
    await until(() => proxy.closed === 1);
    expect(new Set(peers(ep).slice(0, 3)).size).toBe(1);
    ep.assertNoScriptErrors();
  });

  it('uses one connection for every stream without a limit', async () => {
    const { ep, proxy, envoy } = await setup(undefined);
    for (let i = 0; i < 5; i++) expect((await request(`${envoy.url}/x`)).status).toBe(200);
    expect(new Set(peers(ep)).size).toBe(1);
    expect(proxy.accepted).toBe(1);
    expect(envoy.stats.counter('cluster.ext_proc.upstream_cx_max_requests')).toBe(0);
  });
});
