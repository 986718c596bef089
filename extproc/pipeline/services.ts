/**
 * @module pipeline/services
 * Shared services (Redis clients, stores, tokenizers…) that outlive config reloads. Pipelines
 * are rebuilt on every reload; a stage factory that opened its own connection would leak one
 * per reload. Instead it asks `deps.services.shared(key, config, create, close)`: the instance
 * is created once, reused by later generations while its `config` is unchanged, replaced when
 * it changed (the old one closed once streams that may still use it had time to finish), and
 * closed on shutdown.
 */
import type { Logger } from '../telemetry/logger.js';
import { describeError } from '../telemetry/logger.js';

/** What stage factories see. */
export interface Services {
  /**
   * The service under `key`: reused when an earlier generation created it with an equal
   * `config` (compared as JSON), else made by `create`. `close` runs when it is replaced or at
   * shutdown. `create` must be synchronous (pipelines are built synchronously); a service with
   * slow start-up starts in the background and makes its callers wait for readiness.
   */
  shared<T>(key: string, config: unknown, create: () => T, close: (service: T) => void | Promise<void>): T;
}

interface Entry {
  readonly configJson: string;
  readonly instance: unknown;
  readonly close: (service: never) => void | Promise<void>;
}

/** The composition root's registry; one generation per config. */
export class ServiceRegistry {
  private live = new Map<string, Entry>();
  /** Services being retired → a function that closes them now (shutdown does not wait out the delay). */
  private readonly retiring = new Map<Promise<void>, () => void>();

  constructor(
    private readonly log: Logger,
    /** How long a replaced service stays open for streams still using it. */
    private readonly retireAfterMs: number,
  ) {}

  /**
   * Starts building a config generation. Call `commit()` once its pipelines are built (services
   * the new generation did not ask for, or asked for with another config, are retired), or
   * `abandon()` when the build failed (what it created is closed, the live set is untouched).
   */
  generation(): { services: Services; commit(): void; abandon(): void } {
    const next = new Map<string, Entry>();
    const created: Entry[] = [];
    const services: Services = {
      shared: <T>(key: string, config: unknown, create: () => T, close: (service: T) => void | Promise<void>): T => {
        const configJson = JSON.stringify(config ?? null);
        const existing = next.get(key) ?? this.live.get(key);
        if (existing && existing.configJson === configJson) {
          next.set(key, existing);
          return existing.instance as T;
        }
        const entry: Entry = { configJson, instance: create(), close: close as (service: never) => void | Promise<void> };
        created.push(entry);
        next.set(key, entry);
        return entry.instance as T;
      },
    };
    return {
      services,
      commit: () => {
        for (const [key, entry] of this.live) {
          if (next.get(key) !== entry) this.retire(key, entry, this.retireAfterMs);
        }
        this.live = next;
      },
      abandon: () => {
        for (const entry of created) if (![...this.live.values()].includes(entry)) this.retire('(abandoned)', entry, 0);
      },
    };
  }

  /** Closes every service (shutdown, after streams and finish hooks are done). */
  async closeAll(): Promise<void> {
    for (const [key, entry] of this.live) this.retire(key, entry, 0);
    this.live = new Map();
    for (const closeNow of [...this.retiring.values()]) closeNow();
    await Promise.allSettled([...this.retiring.keys()]);
  }

  private retire(key: string, entry: Entry, afterMs: number): void {
    let closeNow: () => void = () => undefined;
    const done: Promise<void> = new Promise<void>((resolve) => {
      let started = false;
      let timer: NodeJS.Timeout | undefined;
      const run = (): void => {
        if (started) return;
        started = true;
        clearTimeout(timer);
        Promise.resolve()
          .then(() => entry.close(entry.instance as never))
          .catch((err: unknown) => this.log.warn('closing a shared service failed', { service: key, error: describeError(err) }))
          .finally(() => {
            this.retiring.delete(done);
            resolve();
          });
      };
      closeNow = run;
      if (afterMs <= 0) run();
      else (timer = setTimeout(run, afterMs)).unref();
    });
    this.retiring.set(done, closeNow);
  }
}
