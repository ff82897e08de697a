import * as Query from "effect-cassandra/Query"

export default Query.cql`CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY, name text)`
