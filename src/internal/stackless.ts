/**
 * Errors built without stack frames. The library builds its errors in the driver's callbacks, the deadline sweep or a
 * fiber's run loop, so their frames would name only its own internals; capturing them is most of the CPU a failed
 * request costs (several times a successful request's), which an overloaded client, failing many requests at once,
 * can least afford. Effect builds its own `SchemaError` the same way.
 */

/** Runs `build` with `Error.stackTraceLimit` at 0, restored after; as is where it cannot be written (a frozen `Error`). */
export const stackless = <A>(build: () => A): A => {
  const limit = Error.stackTraceLimit
  try {
    Error.stackTraceLimit = 0
  } catch {
    return build()
  }
  try {
    return build()
  } finally {
    Error.stackTraceLimit = limit
  }
}
