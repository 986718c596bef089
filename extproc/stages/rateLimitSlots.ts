/**
 * @module stages/rateLimitSlots
 * The slot `rate-limit` publishes for other stages, in a module of its own so that a reader
 * (`route`) imports it without importing the stage (which itself reads `route`'s decision).
 */
import { slot } from '../pipeline/exchange.js';

/**
 * Written by `rate-limit` in request headers: the fraction (0…1, ≥ 1 when spent) of the caller's
 * tightest USD budget used in its current period. Absent without an identified caller,
 * without `rate-limit`, or when it has no USD budget (nothing to wait for); resolves to 0 when
 * the limiter cannot be read, within the limiter's Redis timeout. Readers must not list it in `reads` (that would
 * force `rate-limit` before them): it is published before any body handler runs, whatever the
 * order, so a body handler may `await x.get(budgetUsage)`.
 */
export const budgetUsage = slot<Promise<number>>('budgetUsage');
