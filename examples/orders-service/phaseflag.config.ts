/**
 * The phaseflag CLI's view of this service (`npx phaseflag <command>` from this directory): the same two
 * migrations the service embeds. Connection settings come from the environment, as for the service:
 * DATABASE_URL, PHASEFLAG_STATE_SCHEMA, UNLEASH_URL (with or without /api), UNLEASH_API_TOKEN (client token:
 * status, run), UNLEASH_ADMIN_TOKEN (admin token: provision), UNLEASH_PROJECT, UNLEASH_ENVIRONMENT.
 */
import { defineConfig } from '@phaseflag/cli';
import { customersEmail, ordersAmount } from './src/migrations.js';

export default defineConfig({
  migrations: [ordersAmount, customersEmail],
  database: { stateSchema: 'phaseflag' },
  unleash: { project: 'default', environment: 'development' },
});
