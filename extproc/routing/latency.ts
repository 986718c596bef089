/**
 * @module routing/latency
 * Observed latency per model: an exponentially weighted moving average fed from real responses
 * (the caller decides what it measures, e.g. time to response headers). Per replica, in memory:
 * each replica learns from the traffic it sees, which is enough to steer `withinLatency` rules.
 */

/** Read side used by the routing decision. */
export interface LatencyView {
  /** Average latency in ms, or undefined before the first observation. */
  get(model: string): number | undefined;
}

export class LatencyEwma implements LatencyView {
  private readonly avg = new Map<string, number>();

  /** `alpha`: weight of the newest sample (0.2 ≈ the last ~10 responses dominate). */
  constructor(private readonly alpha = 0.2) {
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError('alpha must be in (0, 1]');
  }

  observe(model: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const prev = this.avg.get(model);
    this.avg.set(model, prev === undefined ? ms : prev + this.alpha * (ms - prev));
  }

  get(model: string): number | undefined {
    return this.avg.get(model);
  }
}
