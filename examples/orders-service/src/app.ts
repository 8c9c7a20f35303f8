/**
 * The HTTP API. Handlers never pick `amount_cents`/`amount` or `email`/`email_normalized` by themselves: reads
 * take `router.select()`, which returns the new column's meaning under its name in every phase (so a flag never
 * changes what a field means), writes pass the value the application has always written through `router.row()`,
 * which adds the other column while both are kept.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Knex } from 'knex';
import type { FlagContext, FlagSource } from '@phaseflag/core';
import type { Controller, KnexRouter } from '@phaseflag/postgres';
import { amountToCents, centsToAmount, isAcceptableEmail, normalizeEmail } from './migrations.js';

export interface AppDeps {
  knex: Knex;
  flags: FlagSource;
  routers: { amount: KnexRouter; email: KnexRouter };
  controller: Controller | undefined;
  instanceId: string;
  onError: (error: Error, req: Request) => void;
}

/** What GET /phaseflag says of one migration, as this instance applies it. */
export interface MigrationView {
  id: string;
  phase: string;
  /** true: every read of this instance uses the new column; "partial": some users' do (read-new rollout). */
  readsNew: boolean | 'partial';
  /** The physical columns a write fills now. */
  writes: string[];
  /** This instance's controller leads the migration. */
  leader: boolean;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const parseId = (raw: unknown): number => {
  const id = typeof raw === 'string' && /^[1-9]\d{0,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id))
    throw new HttpError(400, `id must be a positive whole number, got ${JSON.stringify(raw)}`);
  return id;
};

const parseAmount = (raw: unknown): number => {
  const cents = amountToCents(raw);
  if (cents === null)
    throw new HttpError(
      400,
      `amount must be a string like "12.34" (0 to 21474836.47, at most 2 decimals), got ${JSON.stringify(raw)}`,
    );
  return cents;
};

const parseEmail = (raw: unknown): string => {
  if (!isAcceptableEmail(raw))
    throw new HttpError(400, `email must be a printable ASCII address with one "@", got ${JSON.stringify(raw)}`);
  return raw;
};

/**
 * The Unleash context of a request: read-new rolls out by user, sticky (flexibleRollout, stickiness default),
 * so a user's reads do not flip between columns from one request to the next.
 */
const flagContext = (req: Request): FlagContext => {
  const userId = req.get('x-user-id');
  return { ...(userId ? { userId } : {}), ...(req.ip ? { remoteAddress: req.ip } : {}) };
};

export function createApp(deps: AppDeps): express.Express {
  const { knex, routers } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '16kb' }));

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, instanceId: deps.instanceId });
  });

  app.get('/orders/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const ctx = flagContext(req);
    // select() reads the amount in units under "amount" in every phase: derived in SQL from amount_cents until
    // reads switch for this request, the amount column itself after. It counts the read for the heartbeat.
    const readFrom = routers.amount.decide(ctx).read;
    const row = await knex('orders').first('id', 'customer_id', routers.amount.select(ctx)).where({ id });
    if (!row) throw new HttpError(404, `no order ${id}`);
    // numeric(12,2) arrives from pg as a string with two decimals, from either side.
    res.json({
      id: Number(row.id),
      customerId: Number(row.customer_id),
      amount: row.amount === null ? null : String(row.amount),
      readFrom,
    });
  });

  app.post('/orders', async (req, res) => {
    const customerId = parseId(String(req.body?.customerId ?? ''));
    const cents = parseAmount(req.body?.amount);
    const ctx = flagContext(req);
    const [row] = await knex('orders')
      .insert(routers.amount.row({ customer_id: customerId, amount_cents: cents }, ctx))
      .returning('id');
    res.status(201).json({ id: Number((row as { id: string }).id) });
  });

  app.patch('/orders/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const cents = parseAmount(req.body?.amount);
    const updated = await knex('orders')
      .update(routers.amount.row({ amount_cents: cents }, flagContext(req)))
      .where({ id });
    if (updated === 0) throw new HttpError(404, `no order ${id}`);
    res.json({ id, amount: centsToAmount(cents) });
  });

  app.get('/customers/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const ctx = flagContext(req);
    // The normalized address under "email_normalized" in every phase (lower(btrim(email)) until reads switch).
    const readFrom = routers.email.decide(ctx).read;
    const row = await knex('customers').first('id', routers.email.select(ctx)).where({ id });
    if (!row) throw new HttpError(404, `no customer ${id}`);
    res.json({
      id: Number(row.id),
      email: row.email_normalized === null ? null : String(row.email_normalized),
      readFrom,
    });
  });

  app.post('/customers', async (req, res) => {
    const email = parseEmail(req.body?.email);
    const [row] = await knex('customers')
      .insert(routers.email.row({ email }, flagContext(req)))
      .returning('id');
    res.status(201).json({ id: Number((row as { id: string }).id) });
  });

  app.patch('/customers/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const email = parseEmail(req.body?.email);
    const updated = await knex('customers')
      .update(routers.email.row({ email }, flagContext(req)))
      .where({ id });
    if (updated === 0) throw new HttpError(404, `no customer ${id}`);
    res.json({ id, email: normalizeEmail(email) });
  });

  app.get('/phaseflag', (_req, res) => {
    res.json({
      instanceId: deps.instanceId,
      migrations: [routers.amount, routers.email].map((r) => describeMigration(r, deps)),
    });
  });

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
  });

  // Express 5 passes rejected promises of async handlers here.
  app.use((error: Error & { status?: number; code?: string }, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof HttpError) return void res.status(error.status).json({ error: error.message });
    if (error.status && error.status >= 400 && error.status < 500)
      return void res.status(error.status).json({ error: error.message }); // bad JSON
    if (error.code === '23503') return void res.status(422).json({ error: 'customerId names no customer' });
    deps.onError(error, req);
    res.status(500).json({ error: error.message });
  });
  return app;
}

export function describeMigration(router: KnexRouter, deps: Pick<AppDeps, 'flags' | 'controller'>): MigrationView {
  const m = router.core.migration;
  const phase = router.core.currentPhase;
  const d = router.decide();
  let readsNew: boolean | 'partial' = false;
  if (phase === 'contracted') readsNew = true;
  else if (phase === 'read-new') {
    // the read rule: verified reads old whatever the flag says
    const state = deps.flags.state?.(m.flags.readNew);
    readsNew = state?.fullyOn ? true : state?.enabled ? 'partial' : false;
  }
  return {
    id: m.id,
    phase,
    readsNew,
    writes: [...(d.writeOld && m.oldColumn ? [m.oldColumn] : []), ...(d.writeNew ? [m.newColumn.name] : [])],
    leader: deps.controller?.isLeader(m.id) ?? false,
  };
}
