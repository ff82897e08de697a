import * as Query from "effect-cassandra/Query"

export default Query.cql`ALTER TABLE users ADD IF NOT EXISTS email text`
