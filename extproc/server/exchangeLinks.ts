/**
 * @module server/exchangeLinks
 * Joins the two ext_proc streams Envoy opens for one request when the observability filter is
 * configured: the main stream (answers, mutations) and the send-and-go observability stream
 * (response chunks for observers). Both carry the same `x-request-id`.
 *
 * Order on Envoy's side: the main filter's request phases finish before the decode path reaches
 * the second filter. When the main filter expects nothing more, Envoy may close its stream right
 * away (ext_proc_stream_close_optimization, envoy-ext-proc-facts.md §2.1) — before the
 * observability stream opens. So a released exchange lingers briefly for its observer; `finish`
 * hooks run once, when the last holder is done or the linger ends without an observer.
 */
import type { RouterView, StreamExchange } from '../pipeline/exchange.js';

interface Link {
  readonly x: StreamExchange;
  refs: number;
  observed: boolean;
  timer: NodeJS.Timeout | undefined;
  readonly onLast: () => void;
}

/** Live exchanges by request id. */
export class ExchangeLinks {
  private readonly byId = new Map<string, Link>();
  /** Router exchanges in flight on this replica, for the attempt streams of the same request. */
  private readonly routers = new Map<string, StreamExchange>();

  /** @param lingerMs how long a main stream's exchange waits for its observability stream */
  constructor(private readonly lingerMs: number) {}

  /** Registers a main stream's exchange; the returned release runs `onLast` once all holders are done. */
  register(x: StreamExchange, onLast: () => void): () => void {
    if (this.byId.has(x.requestId)) {
      // A reused x-request-id (e.g. preserve_external_request_id): do not link the second one.
      return onLast;
    }
    const link: Link = { x, refs: 1, observed: false, timer: undefined, onLast };
    this.byId.set(x.requestId, link);
    return this.release.bind(this, x.requestId, link);
  }

  /** Takes a reference to the exchange of `requestId`, if its main stream registered it. */
  acquire(requestId: string): { x: StreamExchange; release: () => void } | undefined {
    const link = this.byId.get(requestId);
    if (!link || link.observed) return undefined;
    link.observed = true;
    clearTimeout(link.timer);
    link.refs++;
    return { x: link.x, release: this.release.bind(this, requestId, link) };
  }

  /**
   * Makes a router exchange visible to attempt streams of the same request on this replica
   * (envoyproxy/ai-gateway joins its per-attempt processors to the router's the same way).
   * False when another exchange already uses the request id (a reused id is never cross-linked);
   * otherwise the stream calls `withdrawRouter` when it ends.
   */
  publishRouter(x: StreamExchange): boolean {
    const id = x.requestId;
    if (this.routers.has(id)) return false;
    this.routers.set(id, x);
    return true;
  }

  /**
   * Withdraws a published router exchange. Envoy may close the router stream as soon as it
   * expects nothing more from it (close optimisation), before the first attempt stream opens:
   * the view then lingers like an observer link. Once the router stream has seen the response's
   * headers, every attempt has begun (Envoy opens an attempt's stream before that attempt
   * reaches its upstream), so nothing is left to wait for: withdrawn at once, the exchange is not
   * kept alive for the linger.
   */
  withdrawRouter(x: StreamExchange): void {
    if (this.lingerMs === 0 || x.responseHeaders !== undefined) this.dropRouter(x);
    else setTimeout(dropRouterLater, this.lingerMs, this, x).unref();
  }

  /** Forgets a published router exchange (unless the id now belongs to another). */
  dropRouter(x: StreamExchange): void {
    if (this.routers.get(x.requestId) === x) this.routers.delete(x.requestId);
  }

  /** A read-only view of the router exchange of `requestId`, if it is in flight here. */
  routerView(requestId: string): RouterView | undefined {
    const x = this.routers.get(requestId);
    if (!x) return undefined;
    return {
      requestId,
      get requestHeaders() {
        return x.requestHeaders;
      },
      get: (key) => x.get(key),
      requestJson: () => x.requestJson(),
    };
  }

  /** Exchanges held (in flight or lingering). */
  get size(): number {
    return this.byId.size;
  }

  /** Ends every linger now (shutdown): their finish hooks run. */
  flush(): void {
    for (const [id, link] of this.byId) {
      if (link.refs === 0) {
        clearTimeout(link.timer);
        this.end(id, link);
      }
    }
  }

  private release(requestId: string, link: Link): void {
    if (--link.refs > 0) return;
    if (link.observed || this.lingerMs === 0) {
      this.end(requestId, link);
      return;
    }
    link.timer = setTimeout(() => this.end(requestId, link), this.lingerMs);
    link.timer.unref();
  }

  private end(requestId: string, link: Link): void {
    if (this.byId.get(requestId) === link) this.byId.delete(requestId);
    link.onLast();
  }
}

/** The linger timer's callback: a module function, not a closure per stream (see server/processStream). */
function dropRouterLater(links: ExchangeLinks, x: StreamExchange): void {
  links.dropRouter(x);
}
