/**
 * The two column changes this service is in the middle of, declared once and shared by the service, the load
 * generator's expectations, the setup script and `phaseflag.config.ts`. Tables are unqualified: they resolve
 * through the connection's search_path (DB_SCHEMA), as the service's own queries do.
 */
import { defineMigration, type MigrationInput } from '@phaseflag/core';

/** orders.amount_cents integer → orders.amount numeric(12,2): money as a decimal, not a count of cents. */
export const ordersAmount = {
  id: 'orders-amount',
  table: 'orders',
  oldColumn: 'amount_cents',
  newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, check: 'amount >= 0' },
  backfill: 'amount_cents / 100.0',
  // Writers that only know the new column (a later version of this service) still fill the old one.
  reverse: '(amount * 100)::integer',
  batch: { size: 2000, targetBatchMs: 100, pauseMs: 20 },
  description: 'Order amounts move from integer cents to numeric(12,2).',
} as const satisfies MigrationInput;

/**
 * customers.email text → customers.email_normalized text: the address as it is compared (trimmed, lower case),
 * indexed for look-ups. There is no reverse: the typed form cannot be recovered from the normalized one.
 */
export const customersEmail = {
  id: 'customers-email',
  table: 'customers',
  oldColumn: 'email',
  newColumn: { name: 'email_normalized', type: 'text', nullable: false, index: true },
  backfill: 'lower(btrim(email))',
  batch: { size: 2000, targetBatchMs: 100, pauseMs: 20 },
  description: 'Customer e-mail addresses are stored normalized (trimmed, lower case) and indexed.',
} as const satisfies MigrationInput;

export const ordersMigrations: readonly MigrationInput[] = [ordersAmount, customersEmail];

/** Validated once here, so a mistake in a declaration fails at import with PF_INVALID_MIGRATION. */
export const migrations = {
  ordersAmount: defineMigration(ordersAmount),
  customersEmail: defineMigration(customersEmail),
};

// ---- the same conversions in application code --------------------------------------------------------------

const AMOUNT = /^(\d{1,8})(?:\.(\d{1,2}))?$/;
/** The old column is a Postgres integer: amounts above this many cents cannot be stored while it is written. */
export const MAX_CENTS = 2_147_483_647;

/** "12.3" → 1230; null when the text is not a non-negative amount with at most two decimals that fits. */
export function amountToCents(text: unknown): number | null {
  if (typeof text !== 'string') return null;
  const m = AMOUNT.exec(text);
  if (!m) return null;
  const cents = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  return cents <= MAX_CENTS ? cents : null;
}

/** 1230 → "12.30": what `amount_cents / 100.0` stored as numeric(12,2) reads back as. */
export function centsToAmount(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

/**
 * `lower(btrim(email))` in application code, for reads served from the old column. btrim() without a second
 * argument strips spaces only (not tabs or newlines), and lower() on non-ASCII letters depends on the database's
 * locale, so the API accepts printable ASCII addresses only (see isAcceptableEmail): for those both agree exactly.
 */
export function normalizeEmail(email: string): string {
  return email.replace(/^ +| +$/g, '').toLowerCase();
}

/** Printable ASCII, one "@", at most 254 characters once trimmed. */
export function isAcceptableEmail(value: unknown): value is string {
  if (typeof value !== 'string' || !/^[\x20-\x7e]+$/.test(value)) return false;
  const trimmed = normalizeEmail(value);
  return trimmed.length >= 3 && trimmed.length <= 254 && /^[^@\s]+@[^@\s]+$/.test(trimmed);
}
