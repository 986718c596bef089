/**
 * What the stand-in observed, for tests: counters named after Envoy's stats
 * (e.g. `ext_proc.spurious_msgs_received`, `cluster.llm_chain.upstream_rq_retry`), the access log
 * entries the config's json_format produced, and one record per finished downstream request.
 */
import type { JsonObject, JsonValue } from './proto.js';

export interface CompletedRequest {
  method?: string;
  path?: string;
  routeName?: string;
  responseCode?: number;
  responseCodeDetails?: string;
  upstreamCluster?: string;
  /** host:port of every upstream attempt, in order. */
  upstreamHosts: string[];
  attemptCount: number;
  dynamicMetadata: Record<string, JsonObject>;
  durationMs: number;
}

export class StandinStats {
  readonly counters = new Map<string, number>();
  readonly accessLog: Record<string, JsonValue>[] = [];
  readonly requests: CompletedRequest[] = [];
  /** Problems inside the stand-in itself (e.g. an unimplemented mode requested at run time). */
  readonly errors: string[] = [];
  private waiters: (() => void)[] = [];

  inc(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  counter(name: string): number {
    return this.counters.get(name) ?? 0;
  }

  recordRequest(r: CompletedRequest, log: Record<string, JsonValue>[]): void {
    this.requests.push(r);
    this.accessLog.push(...log);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `n` downstream requests have finished (access log written). */
  async waitForRequests(n: number, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`stand-in: ${this.requests.length}/${n} requests finished after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}
