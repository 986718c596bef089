/**
 * @module store/lock
 * One gateway per embedded data directory. PGlite has no lock of its own: two processes
 * writing one data directory would corrupt it. The lock is a file next to the directory
 * (`<dataDir>.lock`, created with O_EXCL) holding the owner's pid and host; a lock whose pid is
 * gone on this host is stale and taken over, anything else is a clear error.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { StoreLockedError } from './types.js';

interface LockOwner {
  pid: number;
  host: string;
  since: string;
  token: string;
}

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/** Locks held by this process, so a second store here on the same directory fails too. */
const heldHere = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string') return parsed as LockOwner;
  } catch {
    // unreadable or half-written: treated as no owner below
  }
  return undefined;
}

/** Takes the lock for `dataDir` or throws StoreLockedError naming the holder. */
export function lockDataDir(dataDir: string): DataDirLock {
  const dir = path.resolve(dataDir);
  const file = `${dir}.lock`;
  mkdirSync(path.dirname(dir), { recursive: true });
  if (heldHere.has(file)) {
    throw new StoreLockedError(`embedded store ${dir} is already open in this process (pid ${process.pid})`);
  }
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString(), token: Math.random().toString(36).slice(2) };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify(me));
      } finally {
        closeSync(fd);
      }
      heldHere.add(file);
      const onExit = (): void => release();
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        heldHere.delete(file);
        process.off('exit', onExit);
        // Only remove the file if it is still ours.
        if (readOwner(file)?.token === me.token) {
          try {
            unlinkSync(file);
          } catch {
            // already gone
          }
        }
      };
      process.on('exit', onExit);
      return { path: file, release };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readOwner(file);
      const stale = owner === undefined || (owner.host === me.host && owner.pid !== process.pid && !alive(owner.pid));
      if (stale && attempt === 0) {
        try {
          unlinkSync(file);
        } catch {
          // someone else removed it first; retry the create
        }
        continue;
      }
      const who = owner ? `pid ${owner.pid} on ${owner.host} since ${owner.since}` : 'another process';
      throw new StoreLockedError(
        `embedded store ${dir} is in use by ${who} (lock file ${file}); ` +
          'two gateways cannot share an embedded data directory: give each its own dataDir, or use store kind "postgres"',
      );
    }
  }
  throw new StoreLockedError(`could not lock embedded store ${dir} (lock file ${file})`);
}
