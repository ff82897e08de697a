/**
 * A node the driver's preparation code can be handed in a query plan without a server behind it: as far as
 * lib/prepare-handler.js and src/internal/refusals.ts read a host, with a connection whose PREPARE `prepare` answers,
 * and whose keyspace change (in no keyspace yet) `changeKeyspace` answers.
 */
export const standInNode = (
  address: string,
  prepare: (query: string) => Promise<unknown>,
  changeKeyspace: (keyspace: string) => Promise<void> = async () => {}
) => ({
  address,
  isUp: () => true,
  setDistance: () => {},
  borrowConnection: () => ({
    keyspace: undefined,
    changeKeyspace,
    prepareOnceAsync: prepare
  })
})
