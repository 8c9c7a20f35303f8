import { ValidationError } from './errors.js';
import { parseQualifiedName, validateIdentifier, type QualifiedName } from './identifiers.js';
import {
  migrationSchema,
  type BatchSettings,
  type ConstantDefault,
  type DdlSettings,
  type MigrationInput,
  type ThrottleSettings,
} from './migration-schema.js';
import { shadowSettings, type ShadowSettings } from './shadow.js';
import { zodIssues } from './zod-issues.js';

/**
 * A migration declares one column change. It is validated here, once, against a schema (migration-schema.ts);
 * the live catalog is checked later, at plan time, by the Postgres executor (types, keys, expressions).
 */

/** What the new column is to its source: a replacement, or a column derived from it that stays beside it. */
export type MigrationIntent = 'replace' | 'derive';

export interface IndexSpec {
  readonly name: string;
  readonly unique: boolean;
}

export interface CheckSpec {
  readonly name: string;
  readonly expression: string;
}

/** A foreign key from the new column (see the schema's `references`). */
export interface ForeignKeySpec {
  /** The constraint's name (default pf_fk_<id>). */
  readonly name: string;
  readonly table: QualifiedName;
  readonly column: string;
  readonly onDelete: 'no action' | 'restrict' | 'cascade' | 'set null';
}

export interface NewColumnSpec {
  readonly name: string;
  readonly type: string;
  readonly nullable: boolean;
  /** undefined: no default. */
  readonly default: ConstantDefault | undefined;
  readonly index: IndexSpec | null;
  readonly check: CheckSpec | null;
  /** A foreign key to another table's key; null when none. */
  readonly references: ForeignKeySpec | null;
}

export interface FlagNames {
  readonly dualWrite: string;
  readonly backfill: string;
  readonly readNew: string;
  readonly contract: string;
}

/** A validated, normalized, frozen migration. */
export interface Migration {
  readonly id: string;
  readonly table: QualifiedName;
  readonly primaryKey: readonly string[];
  readonly oldColumn: string | null;
  /** 'replace' (the default) or 'derive' (see the schema); a brand-new column (no old one) is a 'replace'. */
  readonly intent: MigrationIntent;
  readonly newColumn: NewColumnSpec;
  /** SQL expression over the row's columns that gives the new column's value. */
  readonly backfill: string | null;
  /** SQL expression over the row's columns that gives the old column's value from the new one. */
  readonly reverse: string | null;
  readonly batch: Readonly<BatchSettings>;
  readonly throttle: Readonly<ThrottleSettings>;
  readonly ddl: Readonly<DdlSettings>;
  readonly sync: { readonly trigger: boolean };
  readonly flags: FlagNames;
  /** Shadow reads before read-new (see shadow.ts); null when not configured. */
  readonly shadow: ShadowSettings | null;
  readonly description: string | undefined;
}

function invalid(message: string, value: unknown, hint: string, id?: string): ValidationError {
  return new ValidationError('PF_INVALID_MIGRATION', message, { value, hint, migrationId: id });
}

/** Short, stable object names derived from the migration id, within Postgres's 63-byte limit. */
export function objectName(prefix: string, id: string, suffix = ''): string {
  const safe = id.replace(/[^A-Za-z0-9_]/g, '_').toLowerCase();
  const name = `${prefix}_${safe}${suffix ? `_${suffix}` : ''}`;
  if (name.length <= 63) return name;
  let hash = 0;
  for (const ch of id) hash = (Math.imul(hash, 31) + ch.charCodeAt(0)) >>> 0;
  const tail = `${hash.toString(36)}${suffix ? `_${suffix}` : ''}`;
  return `${name.slice(0, 62 - tail.length)}_${tail}`;
}

export function defineMigration(input: MigrationInput): Migration {
  const parsed = migrationSchema.safeParse(input);
  if (!parsed.success) {
    const id = typeof (input as { id?: unknown })?.id === 'string' ? (input as { id: string }).id : undefined;
    const issues = zodIssues(parsed.error);
    throw invalid(
      `Invalid migration${id ? ` "${id}"` : ''}: ${issues}.`,
      input,
      'Fix the fields named above; see the README section "Declaring a migration".',
      id,
    );
  }
  const m = parsed.data;
  const table = parseQualifiedName(m.table, 'table');
  const primaryKey = (Array.isArray(m.primaryKey) ? m.primaryKey : [m.primaryKey]).map((c) =>
    validateIdentifier(c, 'primary key column'),
  );
  if (new Set(primaryKey).size !== primaryKey.length) {
    throw invalid(
      `Migration "${m.id}" names a primary key column twice.`,
      m.primaryKey,
      'List each key column once.',
      m.id,
    );
  }
  const oldColumn = m.oldColumn === null ? null : validateIdentifier(m.oldColumn, 'old column');
  const newName = validateIdentifier(m.newColumn.name, 'new column');
  if (oldColumn === newName) {
    throw invalid(
      `Migration "${m.id}" uses "${newName}" as both old and new column.`,
      newName,
      'Changing a column in place locks and rewrites the table. Give the new column its own name (e.g. "amount_v2"); contract can drop the old one later.',
      m.id,
    );
  }
  if (primaryKey.includes(newName) || (oldColumn !== null && primaryKey.includes(oldColumn))) {
    throw invalid(
      `Migration "${m.id}" changes a primary key column.`,
      { primaryKey, oldColumn, newColumn: newName },
      'Backfill and dual-write address rows by their key, so the key itself cannot be migrated this way.',
      m.id,
    );
  }
  if (m.reverse !== null && oldColumn === null) {
    throw invalid(
      `Migration "${m.id}" has a reverse expression but no old column to keep right.`,
      m.reverse,
      'Remove "reverse", or name the old column.',
      m.id,
    );
  }
  const intent: MigrationIntent = m.intent ?? 'replace';
  if (intent === 'derive') {
    const missing = [oldColumn === null ? 'oldColumn' : null, m.backfill === null ? 'backfill' : null].filter(
      (x) => x !== null,
    );
    if (missing.length > 0) {
      throw invalid(
        `Migration "${m.id}" derives "${newName}" but names no ${missing.join(' and no ')}.`,
        { oldColumn, backfill: m.backfill },
        'A derived column is computed from a source column that stays: name the source as oldColumn and give the backfill expression over it.',
        m.id,
      );
    }
    if (!m.sync.trigger) {
      throw invalid(
        `Migration "${m.id}" derives "${newName}" with the sync trigger off.`,
        m.sync,
        'After contract only the trigger keeps a derived column right on every write of its source: leave sync.trigger on.',
        m.id,
      );
    }
    if (m.reverse !== null) {
      throw invalid(
        `Migration "${m.id}" derives "${newName}" but also has a reverse expression.`,
        m.reverse,
        'Writes of a derived column go to its source and the sync trigger derives it: remove "reverse" (or declare intent: \'replace\').',
        m.id,
      );
    }
  }
  if (!m.newColumn.nullable && m.backfill === null && m.newColumn.default === undefined) {
    throw invalid(
      `Migration "${m.id}" wants "${newName}" NOT NULL but gives neither a backfill expression nor a default.`,
      m.newColumn,
      'Existing rows would stay NULL and SET NOT NULL would fail: add "backfill" or a constant "default".',
      m.id,
    );
  }
  if (!m.newColumn.nullable && m.newColumn.default === null) {
    throw invalid(
      `Migration "${m.id}" wants "${newName}" NOT NULL with a NULL default.`,
      m.newColumn,
      'Give a non-null default or drop the default.',
      m.id,
    );
  }
  if (m.batch.minSize > m.batch.maxSize || m.batch.size < m.batch.minSize || m.batch.size > m.batch.maxSize) {
    throw invalid(
      `Migration "${m.id}" has batch sizes out of order.`,
      m.batch,
      'Keep minSize <= size <= maxSize.',
      m.id,
    );
  }
  if (m.ddl.retryBaseMs > m.ddl.retryMaxMs) {
    throw invalid(
      `Migration "${m.id}" has retryBaseMs above retryMaxMs.`,
      m.ddl,
      'Keep retryBaseMs <= retryMaxMs.',
      m.id,
    );
  }
  const ref = m.newColumn.references;
  if (ref?.onDelete === 'set null' && !m.newColumn.nullable) {
    throw invalid(
      `Migration "${m.id}" wants "${newName}" NOT NULL with a foreign key ON DELETE SET NULL.`,
      ref,
      "Deleting a referenced row would fail on NOT NULL: choose onDelete 'no action', 'restrict' or 'cascade', or keep the column nullable.",
      m.id,
    );
  }
  const references: ForeignKeySpec | null = ref
    ? {
        name: validateIdentifier(ref.name ?? objectName('pf_fk', m.id), 'foreign key name'),
        table: parseQualifiedName(ref.table, 'referenced table'),
        column: validateIdentifier(ref.column, 'referenced column'),
        onDelete: ref.onDelete,
      }
    : null;
  // A foreign key column is indexed (deletes and updates of referenced rows look it up): implied when not declared.
  const idx = m.newColumn.index === false && references ? true : m.newColumn.index;
  const index: IndexSpec | null =
    idx === false
      ? null
      : {
          name: validateIdentifier(
            typeof idx === 'object' && idx.name ? idx.name : objectName('pf_idx', m.id),
            'index name',
          ),
          unique: typeof idx === 'object' ? idx.unique : false,
        };
  const chk = m.newColumn.check;
  const check: CheckSpec | null =
    chk === undefined
      ? null
      : typeof chk === 'string'
        ? { name: objectName('pf_chk', m.id), expression: chk }
        : {
            name: validateIdentifier(chk.name ?? objectName('pf_chk', m.id), 'check constraint name'),
            expression: chk.expression,
          };
  const flags: FlagNames = {
    dualWrite: m.flags.dualWrite ?? `${m.id}.dual-write`,
    backfill: m.flags.backfill ?? `${m.id}.backfill`,
    readNew: m.flags.readNew ?? `${m.id}.read-new`,
    contract: m.flags.contract ?? `${m.id}.contract`,
  };
  const shadow = shadowSettings(m, oldColumn);
  const names = [...Object.values(flags), ...(shadow ? [shadow.flag] : [])];
  if (new Set(names).size !== names.length) {
    throw invalid(
      `Migration "${m.id}" uses one flag name for two phases.`,
      flags,
      'Give each phase its own flag, or leave the defaults.',
      m.id,
    );
  }
  const migration: Migration = {
    id: m.id,
    table,
    primaryKey,
    oldColumn,
    intent,
    newColumn: {
      name: newName,
      type: m.newColumn.type.trim(),
      nullable: m.newColumn.nullable,
      default: m.newColumn.default,
      index,
      check,
      references,
    },
    backfill: m.backfill,
    reverse: m.reverse,
    batch: m.batch,
    throttle: m.throttle,
    ddl: m.ddl,
    sync: m.sync,
    flags,
    shadow,
    description: m.description,
  };
  return deepFreeze(migration);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
