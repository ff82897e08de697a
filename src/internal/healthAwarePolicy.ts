import * as Cassandra from "cassandra-driver"

type LoadBalancingPolicy = Cassandra.policies.loadBalancing.LoadBalancingPolicy

/** The empty set of avoided nodes, shared: a plan avoiding nothing is the child's own. */
export const noNode: ReadonlySet<Cassandra.Host> = new Set()

/**
 * Yields the plan's nodes in order, except that the avoided ones come last: they are still tried when every other
 * node failed, but no request waits on them while another node can answer.
 */
export function* avoidingLast<A>(plan: Iterator<A>, avoided: ReadonlySet<A>): Generator<A, void, undefined> {
  const deferred: Array<A> = []
  for (let next = plan.next(); next.done !== true; next = plan.next()) {
    if (avoided.has(next.value)) deferred.push(next.value)
    else yield next.value
  }
  yield* deferred
}

/**
 * Wraps a load-balancing policy so that the nodes the session's health monitor distrusts (requests outstanding and no
 * byte received for a while, or attempts timing out) go to the back of every query plan. With nothing to avoid, the
 * child's plan is returned as it is: a request pays one size check.
 */
export class HealthAwarePolicy extends Cassandra.policies.loadBalancing.LoadBalancingPolicy {
  /** Replaced as a whole by the health monitor, so a plan being built never sees it change. */
  avoided: ReadonlySet<Cassandra.Host> = noNode

  /**
   * The nodes that refused a request because they are shutting down, with when (`performance.now()`): avoided at once,
   * and by the health monitor until it forgets them.
   */
  readonly stopping = new Map<Cassandra.Host, number>()

  /** Avoids `host` from now on: it refused a request because it is shutting down. */
  avoidStopping(host: Cassandra.Host) {
    this.stopping.set(host, performance.now())
    if (!this.avoided.has(host)) this.avoided = new Set([...this.avoided, host])
  }

  /**
   * No longer avoids `host`, which refused requests as it shut down and is up again (restarted): the health monitor
   * may not have seen it down, and a node just up has no health record to distrust it for.
   */
  restarted(host: Cassandra.Host) {
    if (!this.stopping.delete(host) || !this.avoided.has(host)) return
    const avoided = new Set(this.avoided)
    avoided.delete(host)
    this.avoided = avoided.size === 0 ? noNode : avoided
  }

  readonly child: LoadBalancingPolicy

  constructor(child: LoadBalancingPolicy) {
    super()
    this.child = child
  }

  override init(
    client: Cassandra.Client,
    hosts: Cassandra.HostMap,
    callback: Parameters<LoadBalancingPolicy["init"]>[2]
  ): void {
    this.child.init(client, hosts, callback)
  }

  override getDistance(host: Cassandra.Host): Cassandra.types.distance {
    return this.child.getDistance(host)
  }

  override newQueryPlan(
    keyspace: string,
    executionOptions: Cassandra.ExecutionOptions,
    callback: (error: Error, iterator: Iterator<Cassandra.Host>) => void
  ): void {
    const avoided = this.avoided
    this.child.newQueryPlan(
      keyspace,
      executionOptions,
      avoided.size === 0 ? callback : (error, plan) => callback(error, error ? plan : avoidingLast(plan, avoided))
    )
  }

  override getOptions(): Map<string, object> {
    return this.child.getOptions()
  }
}

/**
 * Moves the node at `address` to the back of the session's query plans, when its policy is the health-aware one and
 * the client knows the node. Never throws: it runs in a request's callback, where a throw would reach no fiber.
 */
export const avoidStoppingNode = (client: Cassandra.Client, address: string) => {
  try {
    const policy = (client as unknown as { readonly options?: Cassandra.ClientOptions }).options?.policies
      ?.loadBalancing
    if (!(policy instanceof HealthAwarePolicy)) return
    const host = client.hosts.get(address)
    if (host !== undefined) policy.avoidStopping(host)
  } catch {
    // A client whose nodes cannot be read avoids none; the request is sent again all the same.
  }
}

/**
 * The session's load-balancing policy: the driver's default one, with distrusted nodes tried last unless the
 * `nodeHealth` option turns node health off (then requests do not pay for the wrapper).
 */
export const healthAwareLoadBalancing = (nodeHealth: unknown): LoadBalancingPolicy => {
  const policy = new Cassandra.policies.loadBalancing.DefaultLoadBalancingPolicy()
  return nodeHealth === false ? policy : new HealthAwarePolicy(policy)
}
