/**
 * The lint corpus of case 10: one migration per file, plain SQL (`sql/`), knex (`knex/`), and the catalog-aware cases
 * (`catalog/`, SQL and knex, on tables the bench builds). Each file opens with comment lines that say what it is:
 *
 *   -- rule: <the hazard it exercises, or none>      -- verdict: unsafe | safe
 *   -- context: <what it needs: an existing table, a transaction, …>
 *   -- pg: <PostgreSQL major version, default 15>     -- catalog: large | small | same-file (catalog/ only)
 *   -- disagreement: <why the two tools are expected to disagree, where they are>
 *
 * (`//` instead of `--` in knex files). The file is the unit judged: its statements beyond the one it is about are
 * context (the CREATE TABLE of a same-file case, the SET lock_timeout of a safe twin) written so as to draw no finding.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type CorpusForm = 'sql' | 'knex';
export type CatalogContext = 'large' | 'small' | 'same-file';

export interface CorpusEntry {
  /** Folder and file name: `sql/renaming-column.unsafe.sql`, `catalog/index.small.js`… */
  id: string;
  path: string;
  form: CorpusForm;
  /** The hazard exercised (phaseflag's rule name), or `none`. */
  rule: string;
  verdict: 'unsafe' | 'safe';
  context: string;
  pgVersion: number;
  /** Runs inside a transaction: an explicit BEGIN in SQL; knex's default unless `config.transaction` is false. */
  inTransaction: boolean;
  /** Set for the cases judged with the live catalog (catalog/). */
  catalog?: CatalogContext;
  /** Why the tools are expected to disagree, where they are. */
  disagreement?: string;
  source: string;
}

export const CORPUS_DIR = fileURLToPath(new URL('.', import.meta.url));
export const DEFAULT_PG_VERSION = 15;
const FOLDERS = ['sql', 'knex', 'catalog'] as const;
const KNOWN_KEYS = new Set(['rule', 'verdict', 'context', 'pg', 'catalog', 'disagreement']);

export function loadCorpus(dir: string = CORPUS_DIR): CorpusEntry[] {
  const entries: CorpusEntry[] = [];
  for (const folder of FOLDERS) {
    for (const name of readdirSync(join(dir, folder)).sort()) {
      const form: CorpusForm | null = name.endsWith('.sql') ? 'sql' : name.endsWith('.js') ? 'knex' : null;
      if (!form) continue;
      const path = join(dir, folder, name);
      entries.push(parseEntry(`${folder}/${name}`, path, form, readFileSync(path, 'utf8')));
    }
  }
  return entries;
}

function parseEntry(id: string, path: string, form: CorpusForm, source: string): CorpusEntry {
  const marker = form === 'sql' ? '--' : '//';
  const header = new Map<string, string>();
  for (const line of source.split('\n')) {
    if (!line.startsWith(`${marker} `)) break;
    const m = /^(?:--|\/\/) ([a-z]+): (.+)$/.exec(line);
    if (!m || !KNOWN_KEYS.has(m[1]!)) throw new Error(`${path}: unknown header line ${JSON.stringify(line)}`);
    header.set(m[1]!, m[2]!.trim());
  }
  const need = (key: string) => {
    const v = header.get(key);
    if (!v) throw new Error(`${path}: the header has no "${key}:" line`);
    return v;
  };
  const verdict = need('verdict');
  if (verdict !== 'unsafe' && verdict !== 'safe')
    throw new Error(`${path}: verdict must be unsafe or safe, got ${verdict}`);
  const catalog = header.get('catalog');
  if (catalog !== undefined && catalog !== 'large' && catalog !== 'small' && catalog !== 'same-file')
    throw new Error(`${path}: catalog must be large, small or same-file, got ${catalog}`);
  const pg = Number(header.get('pg') ?? DEFAULT_PG_VERSION);
  const inTransaction =
    form === 'sql' ? /^\s*BEGIN\s*;/im.test(source) : !/exports\.config\s*=\s*\{\s*transaction:\s*false/.test(source);
  return {
    id,
    path,
    form,
    rule: need('rule'),
    verdict,
    context: need('context'),
    pgVersion: pg,
    inTransaction,
    ...(catalog ? { catalog } : {}),
    ...(header.has('disagreement') ? { disagreement: header.get('disagreement')! } : {}),
    source,
  };
}
