/**
 * One timer for every request under the session's default timeout. Requests given the same timeout expire in the
 * order they started, so they wait in a list ordered by their deadline: joining and leaving it are O(1), and one
 * timer, armed for the earliest deadline, sweeps the expired ones. A request that ends before its deadline only
 * leaves the list; the timer is not moved for it, it fires at the deadline it was armed for and re-arms for the
 * earliest one left.
 */

/** A member of the list: the list links live in the member, so joining allocates nothing. */
export interface Expiring {
  /** `performance.now()` at which it expires. */
  readonly expiresAt: number
  /**
   * Called once, when its deadline passed while it was in the list (it has left the list then). It must not throw:
   * it runs in the timer's callback, where a throw would leave the members after it waiting and reach no fiber.
   */
  expire(): void
  previousExpiring: Expiring | undefined
  nextExpiring: Expiring | undefined
}

/** Deadlines that all lie the same duration after the moment they join, and the timer that sweeps them. */
export interface DeadlineList {
  /** Adds a member; one whose deadline is no earlier than every member's (the usual case) joins in O(1). */
  readonly add: (member: Expiring) => void
  /** Takes a member out of the list; nothing happens to one that is not in it. */
  readonly remove: (member: Expiring) => void
  /**
   * Stops the timer once no member is left, now or when the last one leaves or expires: a closed session holds no
   * timer, so the process can exit. Members may still join (the timer then runs for them again).
   */
  readonly close: () => void
}

export const makeDeadlineList = (): DeadlineList => {
  let first: Expiring | undefined
  let last: Expiring | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  // While open, the timer is left armed when the list empties, so that a lone request does not re-arm it each time.
  let closed = false

  const stopTimer = () => {
    if (timer === undefined) return
    clearTimeout(timer)
    timer = undefined
  }

  const remove = (member: Expiring) => {
    const { previousExpiring, nextExpiring } = member
    if (previousExpiring === undefined && first !== member) return
    if (previousExpiring === undefined) first = nextExpiring
    else previousExpiring.nextExpiring = nextExpiring
    if (nextExpiring === undefined) last = previousExpiring
    else nextExpiring.previousExpiring = previousExpiring
    member.previousExpiring = undefined
    member.nextExpiring = undefined
    if (first === undefined && closed) stopTimer()
  }

  const armFor = (expiresAt: number, now: number) => {
    // A timer can fire a fraction of a millisecond early: the sweep then re-arms for what is left.
    timer = setTimeout(sweep, Math.max(1, Math.ceil(expiresAt - now)))
  }

  const sweep = () => {
    timer = undefined
    const now = performance.now()
    while (first !== undefined && first.expiresAt <= now) {
      const expired = first
      remove(expired)
      // Expiring resumes a fiber, which may start another request (joining at the end) before this returns.
      expired.expire()
    }
    if (first !== undefined && timer === undefined) armFor(first.expiresAt, now)
  }

  return {
    add: (member) => {
      // Members join in deadline order, so this finds its place at once; a later one is still placed in order.
      let before = last
      while (before !== undefined && before.expiresAt > member.expiresAt) before = before.previousExpiring
      const after = before === undefined ? first : before.nextExpiring
      member.previousExpiring = before
      member.nextExpiring = after
      if (before === undefined) first = member
      else before.nextExpiring = member
      if (after === undefined) last = member
      else after.previousExpiring = member
      if (timer === undefined) armFor((first as Expiring).expiresAt, performance.now())
    },
    remove,
    close: () => {
      closed = true
      if (first === undefined) stopTimer()
    }
  }
}
