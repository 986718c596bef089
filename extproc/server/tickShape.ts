/**
 * @module server/tickShape
 * Keeps one of Node's `process.nextTick` queue entries alive for the life of the process, so
 * that V8 never frees the hidden classes ("maps") those entries are built with.
 *
 * Why (Node 20, V8 11.3; measured, see the README's "Found while measuring"): `nextTick` builds
 * each queue entry as an object literal with computed keys
 * (`{ [async_id_symbol]: …, [trigger_async_id_symbol]: …, callback, args }`), and V8 defines
 * each of its properties through `DefineKeyedOwnPropertyInLiteral`, whose feedback keeps the
 * map it saw weakly. An entry lives for microseconds: a full GC that finds none alive frees the
 * maps after the first property; the next time `nextTick` runs unoptimised (after any
 * deoptimisation), V8 compares the cleared map with the new one and marks three of those four
 * properties megamorphic, for the rest of the process (v8 src/runtime/runtime-object.cc,
 * Runtime_DefineKeyedOwnPropertyInLiteral). From then on every optimised function that inlines
 * `nextTick` (the streams' `maybeReadMore` and `resume`, run for every gRPC message) defines
 * those properties through a runtime call: ~8% of the serving thread's CPU with the full
 * pipeline at 32 concurrent streams (perf). Whether and when it happens depends on where full
 * GCs fall, so any long-running process meets it sooner or later; one entry kept alive keeps the
 * maps, and the feedback monomorphic (test/server/tickShape.test.ts shows both).
 *
 * The entry is captured as it is made (an async hook enabled around one `nextTick` call), not
 * rebuilt by hand: nothing here depends on the shape Node gives it.
 */
import { createHook } from 'node:async_hooks';

let kept: object | undefined;

function nothing(): void {}

/** Captures and keeps one nextTick queue entry (once per thread); true when one is kept. */
export function keepTickObjectShape(): boolean {
  if (kept) return true;
  const hook = createHook({
    init(_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject' && !kept) kept = resource;
    },
  });
  hook.enable();
  try {
    process.nextTick(nothing);
  } finally {
    hook.disable();
  }
  return kept !== undefined;
}
