import type * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"

interface DriverMetadata {
  readonly buildTokens?: (hosts: Cassandra.HostMap) => void
  readonly keyspaces?: Record<string, { replicas?: unknown }>
}

const rebuild = (client: Cassandra.Client) => {
  const metadata = client.metadata as unknown as DriverMetadata
  if (typeof metadata.buildTokens !== "function") return
  metadata.buildTokens(client.hosts)
  // Each keyspace caches its replicas per token, computed from the old ring.
  for (const keyspace of Object.values(metadata.keyspaces ?? {})) keyspace.replicas = undefined
}

const topologyEvents = ["hostAdd", "hostRemove", "hostUp"] as const

/**
 * Keeps the driver's token map in step with the cluster while the scope is open. cassandra-driver 4.10 builds its
 * token ring only once, when it first connects: without this, a node added later never receives token-aware
 * requests and a removed node stays in the replica lists.
 */
export const keepTokenMapCurrent = (client: Cassandra.Client) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const onChange = () => rebuild(client)
      for (const event of topologyEvents) client.on(event, onChange)
      return onChange
    }),
    (onChange) =>
      Effect.sync(() => {
        for (const event of topologyEvents) client.off(event, onChange)
      })
  )
