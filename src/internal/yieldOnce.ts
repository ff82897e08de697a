/**
 * The iterator `yield*` takes from a statement in `Effect.gen`. Effect's own (`SingleShotGen`) answers its first `next`
 * with a new object literal, and a generator waiting in `yield*` for a request holds that object until the request
 * ends, across young-generation collections. V8's allocation-site pretenuring then decides that literal's objects
 * survive, and allocates every later one (from every `yield*` in the process) in the old generation, where each keeps
 * the young objects it points to alive until a full collection. An `Effect.gen` loop of requests then runs in a mode
 * costing it two to three times the CPU, in most processes but not all (bench/README.md, "Effect.gen and V8's
 * pretenuring"). This iterator answers both calls with itself: no object literal, and no object beyond itself, per
 * `yield*`.
 */
export class YieldOnce<T, A> {
  value: T | A
  done = false
  private yielded = false
  constructor(effect: T) {
    this.value = effect
  }
  next(value: A): IteratorResult<T, A> {
    if (this.yielded) {
      this.value = value
      this.done = true
    } else this.yielded = true
    return this as IteratorResult<T, A>
  }
}
