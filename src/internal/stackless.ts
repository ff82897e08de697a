/**
 * Errors built without stack frames. The library builds its errors in the driver's callbacks, the deadline sweep or a
 * fiber's run loop, so their frames would name only its own internals; capturing them is most of the CPU a failed
 * request costs (several times a successful request's), which an overloaded client, failing many requests at once,
 * can least afford. Effect builds its own `SchemaError` the same way.
 */

/** The `Error` whose limit the engine reads: user code may replace the global `Error` (a polyfill, a test). */
const EngineError = Error

/**
 * Runs `build` with `Error.stackTraceLimit` at 0 and puts the limit back exactly as it was (absent, or any value)
 * after. It never throws for the limit's sake: where the limit cannot be read or written (a frozen `Error`, a setter
 * that throws), `build` runs as it is; the limit is put back even when the build, or user code it runs, throws.
 */
export const stackless = <A>(build: () => A): A => {
  let had: boolean
  let limit: number
  try {
    had = Object.hasOwn(EngineError, "stackTraceLimit")
    limit = EngineError.stackTraceLimit
  } catch {
    return build()
  }
  try {
    EngineError.stackTraceLimit = 0
  } catch {
    // Not writable: the frames are captured as usual. A setter may still have stored the 0, so it is put back below.
  }
  try {
    return build()
  } finally {
    try {
      if (had) EngineError.stackTraceLimit = limit
      else Reflect.deleteProperty(EngineError, "stackTraceLimit")
    } catch {
      // Made read-only by user code during the build: nothing else can be done, and a throw here would reach the
      // driver's callback or the deadline sweep.
    }
  }
}
