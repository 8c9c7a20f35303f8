// The public surface of the example, for the demo and the tests: the migrations it embeds, its tables and seed,
// the service in-process, and the load generator.
export {
  ordersMigrations,
  ordersAmount,
  customersEmail,
  migrations,
  amountToCents,
  centsToAmount,
  normalizeEmail,
  isAcceptableEmail,
  MAX_CENTS,
} from './migrations.js';
export {
  createSchema,
  seed,
  seededOrder,
  seededCustomerEmail,
  seededCustomerCount,
  checkSchemaName,
  type SeedResult,
} from './schema.js';
export { startServer, stderrLogger, type ServerOptions, type ServiceEvent, type RunningServer } from './service.js';
export type { MigrationView } from './app.js';
export { optionsFromEnv } from './env.js';
export { startLoad, type LoadOptions, type LoadReport, type LoadHandle } from './load.js';
