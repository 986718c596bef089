import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  embeddedServerOf,
  openStore,
  StoreLockedError,
  StoreSchemaError,
  type Migration,
  MIGRATIONS,
  type Store,
} from '../../extproc/store/index.js';
import { BACKENDS, startBackend, tempDir, type Backend } from './backends.js';

/** Migrations shipped today (the cache is 1; others, like the usage ledger, follow). */
const N = MIGRATIONS.length;

describe.each(BACKENDS)('store on %s', (kind) => {
  let backend: Backend;
  let store: Store;
  beforeAll(async () => {
    backend = await startBackend(kind);
    store = await backend.open();
  });
  afterAll(async () => {
    await store?.close();
    await backend?.dispose();
  });

  it('migrates once, then is a no-op', async () => {
    const first = await store.migrate();
    expect(first).toEqual({ applied: MIGRATIONS.map((m) => m.version), current: N });
    const second = await store.migrate();
    expect(second).toEqual({ applied: [], current: N });
    const rows = await store.pool.query('SELECT version, name FROM schema_migrations ORDER BY version');
    expect(rows.rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    expect(rows.rows[0]).toEqual({ version: 1, name: 'semantic cache' });
  });

  it('creates the cache table with its indexes and a vector column of the configured size', async () => {
    const idx = await store.pool.query<{ indexname: string; indexdef: string }>(
      "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'semantic_cache' ORDER BY indexname",
    );
    const defs = idx.rows.map((r) => r.indexdef).join('\n');
    expect(defs).toMatch(/UNIQUE INDEX .* \(scope_key, exact_hash\)/);
    expect(defs).toMatch(/USING hnsw \(embedding vector_cosine_ops\)/);
    expect(defs).toMatch(/\(scope_key, last_hit_at\)/);
    const col = await store.pool.query<{ t: string }>(
      "SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'semantic_cache'::regclass AND attname = 'embedding'",
    );
    expect(col.rows[0]?.t).toBe('vector(384)');
  });

  it('refuses a store opened later with other embedding dimensions, naming both', async () => {
    // Embedded allows one store per data dir: close it first (postgres: both may be open).
    if (kind === 'embedded') await store.close();
    const other = await backend.open({ vectorDimensions: 1536 });
    try {
      const err = await other.migrate().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(StoreSchemaError);
      expect((err as Error).message).toMatch(/vector\(384\).*1536 dimensions/);
    } finally {
      await other.close();
      if (kind === 'embedded') store = await backend.open();
    }
  });

  it('adding a migration is one entry, and two stores migrating at once apply it once', async () => {
    const extra: Migration = {
      version: N + 1,
      name: 'probe',
      up: () => ['CREATE TABLE migration_probe (id int PRIMARY KEY)', 'INSERT INTO migration_probe VALUES (1)'],
    };
    const list = [...MIGRATIONS, extra];
    if (kind === 'postgres') {
      const a = await openStore(backend.config(), { migrations: list });
      const b = await openStore(backend.config(), { migrations: list });
      const reports = await Promise.all([a.migrate(), b.migrate()]);
      await Promise.all([a.close(), b.close()]);
      expect(reports.map((r) => r.applied).flat()).toEqual([N + 1]);
    } else {
      // One gateway per data dir: reopen with the longer list.
      await store.close();
      store = await openStore(backend.config(), { migrations: list });
      expect(await store.migrate()).toEqual({ applied: [N + 1], current: N + 1 });
    }
    const probe = await store.pool.query('SELECT count(*)::int AS n FROM migration_probe');
    expect(probe.rows[0]).toEqual({ n: 1 });
  });

  it('rolls back a failing migration and records nothing for it', async () => {
    const bad: Migration = { version: N + 2, name: 'bad', up: () => ['CREATE TABLE half_done (id int)', 'SELECT no_such_fn()'] };
    const probeList = [...MIGRATIONS, { version: N + 1, name: 'probe', up: () => [] }, bad];
    const s = kind === 'postgres' ? await openStore(backend.config(), { migrations: probeList }) : store;
    const err = await runWith(s, probeList);
    expect(err).toBeInstanceOf(StoreSchemaError);
    expect((err as Error).message).toContain(`migration ${N + 2} (bad) failed`);
    const t = await s.pool.query("SELECT to_regclass('half_done') AS t");
    expect(t.rows[0]).toEqual({ t: null });
    const v = await s.pool.query('SELECT max(version)::int AS v FROM schema_migrations');
    expect(v.rows[0]).toEqual({ v: N + 1 });
    if (s !== store) await s.close();
  });
});

async function runWith(s: Store, list: readonly Migration[]): Promise<unknown> {
  const { runMigrations } = await import('../../extproc/store/migrations.js');
  return runMigrations(s.pool, { vectorDimensions: s.vectorDimensions }, list).then(() => undefined, (e: unknown) => e);
}

describe('embedded store', () => {
  it('keeps its data across close and reopen, and releases the data dir lock on close', async () => {
    const tmp = tempDir();
    const dataDir = path.join(tmp.dir, 'db');
    try {
      const a = await openStore({ kind: 'embedded', dataDir });
      await a.migrate();
      await a.pool.query('CREATE TABLE keep (v text)');
      await a.pool.query("INSERT INTO keep VALUES ('kept')");
      expect(a.status()).toMatchObject({ kind: 'embedded', up: true, restarts: 0 });
      expect(a.status().startupMs).toBeGreaterThan(0);
      await a.close();
      await a.close(); // idempotent
      expect(existsSync(`${dataDir}.lock`)).toBe(false);
      const b = await openStore({ kind: 'embedded', dataDir });
      expect((await b.migrate()).applied).toEqual([]);
      expect((await b.pool.query('SELECT v FROM keep')).rows).toEqual([{ v: 'kept' }]);
      await b.close();
    } finally {
      tmp.remove();
    }
  });

  it('refuses a second store on the same data dir with a clear error', async () => {
    const tmp = tempDir();
    const dataDir = path.join(tmp.dir, 'db');
    const a = await openStore({ kind: 'embedded', dataDir });
    try {
      const err = await openStore({ kind: 'embedded', dataDir }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(StoreLockedError);
      expect((err as Error).message).toMatch(/already open in this process/);
    } finally {
      await a.close();
      tmp.remove();
    }
  });

  it('refuses a data dir locked by another live process, and takes over a dead one\'s lock', async () => {
    const tmp = tempDir();
    const dataDir = path.join(tmp.dir, 'db');
    // A live process that is not us: a sleeping child.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const lock = { pid: child.pid, host: (await import('node:os')).hostname(), since: 'test', token: 'x' };
      writeFileSync(`${dataDir}.lock`, JSON.stringify(lock));
      const err = await openStore({ kind: 'embedded', dataDir }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(StoreLockedError);
      expect((err as Error).message).toContain(`pid ${child.pid}`);
      expect((err as Error).message).toMatch(/own dataDir|"postgres"/);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const s = await openStore({ kind: 'embedded', dataDir });
      expect(JSON.parse(readFileSync(`${dataDir}.lock`, 'utf8')).pid).toBe(process.pid);
      await s.close();
    } finally {
      child.kill('SIGKILL');
      tmp.remove();
    }
  });

  it('restarts its worker after a crash on the same port; queries fail meanwhile, then work', async () => {
    const tmp = tempDir();
    const events: string[] = [];
    const s = await openStore({ kind: 'embedded', dataDir: path.join(tmp.dir, 'db') }, { onEvent: (e) => events.push(e.event) });
    try {
      await s.migrate();
      const server = embeddedServerOf(s)!;
      await server.crash();
      expect(s.status().up).toBe(false);
      // Poll (no timing assumption beyond a generous deadline) until the restart is done.
      const deadline = Date.now() + 30_000;
      while (!s.status().up && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(s.status()).toMatchObject({ up: true, restarts: 1 });
      expect(events).toEqual(expect.arrayContaining(['embedded-started', 'embedded-crashed', 'embedded-restarted']));
      // Idle connections to the dead worker are discarded by the pool; a fresh one works.
      let rows: unknown[] = [];
      for (let i = 0; i < 3 && rows.length === 0; i++) {
        rows = await s.pool.query('SELECT version FROM schema_migrations ORDER BY version').then((r) => r.rows, () => []);
      }
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version })));
    } finally {
      await s.close();
      tmp.remove();
    }
  });
});
