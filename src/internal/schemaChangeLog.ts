/**
 * The topology's schema-change events, read from the driver's log (see {@link schemaChangeFromLog}).
 */
import type { SchemaChanged } from "../Topology.ts"

const schemaChangeTypes = { CREATED: "created", UPDATED: "updated", DROPPED: "dropped" } as const

/**
 * Reads a schema change out of the driver's control-connection log event: the driver has no public schema-change
 * hook, but it logs every SCHEMA_CHANGE push from the server with the event itself as the log's detail. Undefined
 * for every other log line and for a detail it cannot read.
 */
export const schemaChangeFromLog = (
  className: string,
  message: string,
  detail: unknown,
  at: Date
): SchemaChanged | undefined => {
  if (
    className !== "ControlConnection" ||
    message !== "Schema change" ||
    typeof detail !== "object" ||
    detail === null
  ) {
    return undefined
  }
  const event = detail as Record<string, unknown>
  const change = schemaChangeTypes[event.schemaChangeType as keyof typeof schemaChangeTypes]
  if (change === undefined || typeof event.keyspace !== "string") return undefined
  const [target, name] = event.isKeyspace
    ? (["keyspace", undefined] as const)
    : typeof event.table === "string"
      ? (["table", event.table] as const)
      : typeof event.udt === "string"
        ? (["type", event.udt] as const)
        : typeof event.functionName === "string"
          ? (["function", event.functionName] as const)
          : typeof event.aggregate === "string"
            ? (["aggregate", event.aggregate] as const)
            : ([undefined, undefined] as const)
  if (target === undefined) return undefined
  return { _tag: "SchemaChanged", change, target, keyspace: event.keyspace, name, at }
}
