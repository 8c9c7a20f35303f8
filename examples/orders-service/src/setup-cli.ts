/**
 * `npm run setup -w @phaseflag/example-orders-service -- [--rows 100000] [--provision]`
 *
 * --rows N     creates the tables if missing and seeds N orders (N/10 customers) if they are empty
 *              (DATABASE_URL, DB_SCHEMA), as the service does with SEED_ROWS.
 * --provision  creates both migrations' phase flags in Unleash through its Admin API, each off with its
 *              rollout strategy (UNLEASH_URL, with or without /api; UNLEASH_ADMIN_TOKEN; UNLEASH_PROJECT default
 *              "default"; UNLEASH_ENVIRONMENT default "development"), as `phaseflag provision <id>` does for
 *              one migration. Idempotent.
 * Prints what it did as JSON.
 */
import { parseArgs } from 'node:util';
import knexFactory from 'knex';
import { provisionFlags } from '@phaseflag/unleash';
import { migrations } from './migrations.js';
import { checkSchemaName, createSchema, seed } from './schema.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string' },
    provision: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
const die = (message: string, code = 2): never => {
  process.stderr.write(`setup: ${message}\n`);
  process.exit(code);
};
if (values.help || (values.rows === undefined && !values.provision)) {
  process.stderr.write(
    'usage: setup [--rows N] [--provision]   (see the header of src/setup-cli.ts for the environment)\n',
  );
  process.exit(values.help ? 0 : 2);
}

const done: Record<string, unknown> = {};
if (values.rows !== undefined) {
  const rows = Number(values.rows);
  if (!Number.isSafeInteger(rows) || rows < 1)
    die(`--rows must be a positive whole number, got ${JSON.stringify(values.rows)}`);
  if (!process.env.DATABASE_URL) die('DATABASE_URL is not set');
  const schema = process.env.DB_SCHEMA ? checkSchemaName(process.env.DB_SCHEMA) : undefined;
  const knex = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } });
  try {
    await createSchema(knex, schema ? { schema } : {});
    done.seeded = await seed(knex, { rows, ...(schema ? { schema } : {}) });
  } catch (error) {
    die(`could not set up the tables: ${(error as Error).message}`, 1);
  } finally {
    await knex.destroy();
  }
}

if (values.provision) {
  // The Admin API lives beside the client API: the base URL is the same with or without the /api suffix.
  const url = process.env.UNLEASH_URL?.replace(/\/+$/, '').replace(/\/api$/, '');
  const token = process.env.UNLEASH_ADMIN_TOKEN;
  if (!url || !token)
    die('--provision needs UNLEASH_URL (e.g. http://localhost:4242) and UNLEASH_ADMIN_TOKEN (an admin token)');
  const admin = {
    url: url!,
    token: token!,
    project: process.env.UNLEASH_PROJECT || 'default',
    environment: process.env.UNLEASH_ENVIRONMENT || 'development',
  };
  const reports = [];
  for (const m of [migrations.ordersAmount, migrations.customersEmail]) {
    try {
      const r = await provisionFlags(m, admin);
      reports.push({
        migration: r.migrationId,
        created: r.created,
        completed: r.completed,
        existing: r.existing,
        warnings: r.flags.flatMap((f) => f.warnings),
      });
    } catch (error) {
      die(
        `provisioning ${m.id}: ${(error as Error).message}${(error as { hint?: string }).hint ? `\n  ${(error as { hint?: string }).hint}` : ''}`,
        1,
      );
    }
  }
  done.provisioned = reports;
}
process.stdout.write(`${JSON.stringify(done, null, 2)}\n`);
