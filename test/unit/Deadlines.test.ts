import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { type Expiring, makeDeadlineList } from "../../src/internal/deadlines.ts"

const member = (expiresAt: number, onExpire: (member: Expiring) => void): Expiring => {
  const self: Expiring = {
    expiresAt,
    expire: () => onExpire(self),
    previousExpiring: undefined,
    nextExpiring: undefined
  }
  return self
}

const until = (done: () => boolean) =>
  Effect.sync(done).pipe(Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (ok) => ok }))

describe("deadline list", () => {
  it.live("expires members in deadline order, never one that left, and re-arms for members added while expiring", () =>
    Effect.gen(function* () {
      const deadlines = makeDeadlineList()
      const expired: Array<string> = []
      const now = performance.now()
      const named = new Map<Expiring, string>()
      const add = (name: string, expiresAt: number) => {
        const added = member(expiresAt, (self) => {
          expired.push(named.get(self) ?? "?")
          // Expiring resumes a fiber, which may start another request at once.
          if (name === "b") add("added while expiring", now + 500)
        })
        named.set(added, name)
        deadlines.add(added)
        return added
      }
      add("a", now + 20)
      const left = add("left", now + 25)
      add("b", now + 30)
      // Out of order: placed before "c", not after it.
      add("c", now + 60)
      add("early", now + 40)
      deadlines.remove(left)
      deadlines.remove(left)
      yield* until(() => expired.length === 5)
      assert.deepStrictEqual(expired, ["a", "b", "early", "c", "added while expiring"])
      deadlines.close()
    })
  )

  it.live("stops its timer on close once no member is left", () =>
    Effect.gen(function* () {
      const deadlines = makeDeadlineList()
      let expired = 0
      const only = member(performance.now() + 50, () => expired++)
      deadlines.add(only)
      deadlines.remove(only)
      deadlines.close()
      yield* Effect.sleep("80 millis")
      assert.strictEqual(expired, 0)
      // A member still waiting keeps the list working through close.
      const kept = member(performance.now() + 10, () => expired++)
      deadlines.add(kept)
      deadlines.close()
      yield* until(() => expired === 1)
    })
  )

  it("stops its timer when the last member leaves after close, and keeps it while open", () => {
    const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length
    const deadlines = makeDeadlineList()
    const before = timers()
    const first = member(performance.now() + 60_000, () => {})
    const second = member(performance.now() + 60_000, () => {})
    deadlines.add(first)
    assert.strictEqual(timers(), before + 1)
    // While open, a list left empty keeps its timer: the next request does not arm another.
    deadlines.remove(first)
    deadlines.add(second)
    assert.strictEqual(timers(), before + 1)
    // Closed with a member left: its timer stops once that member leaves.
    deadlines.close()
    assert.strictEqual(timers(), before + 1)
    deadlines.remove(second)
    assert.strictEqual(timers(), before)
  })

  it.live("expires members sharing one deadline in the order they joined, once each, in one sweep", () =>
    Effect.gen(function* () {
      const deadlines = makeDeadlineList()
      const expired: Array<number> = []
      const at = performance.now() + 20
      for (let i = 0; i < 1000; i++) deadlines.add(member(at, () => expired.push(i)))
      yield* until(() => expired.length === 1000)
      assert.deepStrictEqual(
        expired,
        Array.from({ length: 1000 }, (_, i) => i)
      )
      deadlines.close()
    })
  )

  it.live("keeps the members left in order after 100,000 others leave in any order", () =>
    Effect.gen(function* () {
      const deadlines = makeDeadlineList()
      const expired: Array<number> = []
      const start = performance.now() + 50
      const members = Array.from({ length: 100_010 }, (_, i) => {
        const added = member(start + i / 10_000, () => expired.push(i))
        deadlines.add(added)
        return added
      })
      // Every tenth-thousand member stays; the others leave in a scrambled order, some twice.
      const leaving = members.map((_, i) => i).filter((i) => i % 10_001 !== 0)
      for (let i = leaving.length - 1; i > 0; i--) {
        const j = (i * 7919) % (i + 1)
        ;[leaving[i], leaving[j]] = [leaving[j]!, leaving[i]!]
      }
      for (const i of leaving) deadlines.remove(members[i]!)
      for (const i of leaving.slice(0, 100)) deadlines.remove(members[i]!)
      const staying = members.map((_, i) => i).filter((i) => i % 10_001 === 0)
      yield* until(() => expired.length === staying.length)
      assert.deepStrictEqual(expired, staying)
      deadlines.close()
      // The list still works after it emptied.
      deadlines.add(member(performance.now() + 5, () => expired.push(-1)))
      yield* until(() => expired.length === staying.length + 1)
      deadlines.close()
    })
  )
})
