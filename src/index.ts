/**
 * effect-cassandra: an Effect-native driver for Apache Cassandra.
 *
 * @since 0.1.0
 */

/**
 * Batch jobs: bounded concurrency, retries of idempotent statements, partition batches, progress and resumable
 * outcomes.
 *
 * @since 0.1.0
 */
export * as BatchJob from "./BatchJob.ts"

/**
 * The typed error of every request, classified from the driver's errors and the server's error codes.
 *
 * @since 0.1.0
 */
export * as CassandraError from "./CassandraError.ts"

/**
 * TypeScript table definitions and UDT schemas generated from a live keyspace.
 *
 * @since 0.1.0
 */
export * as Codegen from "./Codegen.ts"
/**
 * Schema-checked queries: encoded requests, decoded rows.
 *
 * @since 0.1.0
 */
export * as CqlSchema from "./CqlSchema.ts"
/**
 * CQL types as Schemas.
 *
 * @since 0.1.0
 */
export * as CqlType from "./CqlType.ts"
/**
 * Layers that provide the session, the raw client and the topology together.
 *
 * @since 0.1.0
 */
export * as CassandraLayer from "./Layer.ts"

/**
 * The driver's own logs in Effect's logger, with mapped levels and annotations.
 *
 * @since 0.1.0
 */
export * as Logging from "./Logging.ts"

/**
 * The library's metrics as Effect `Metric` handles, their layer and a readable summary.
 *
 * @since 0.1.0
 */
export * as Metrics from "./Metrics.ts"

/**
 * Schema migrations applied once across every instance, with a lease and a wait for schema agreement.
 *
 * @since 0.1.0
 */
export * as Migrator from "./Migrator.ts"

/**
 * CQL statements: the `cql` template, identifiers, paging, streams and batches.
 *
 * @since 0.1.0
 */
export * as Query from "./Query.ts"

/**
 * A start-up check of the declared tables and types against the cluster's schema, and drift reported at run time.
 *
 * @since 0.1.0
 */
export * as SchemaCheck from "./SchemaCheck.ts"

/**
 * The Cassandra session service and its layers.
 *
 * @since 0.1.0
 */
export * as Session from "./Session.ts"

/**
 * Tables and user-defined types declared as values: row Schemas, CREATE statements and typed statements.
 *
 * @since 0.1.0
 */
export * as Table from "./Table.ts"

/**
 * The cluster's nodes and their state.
 *
 * @since 0.1.0
 */
export * as Topology from "./Topology.ts"
