import type { Node, RangeVar, TypeName } from '@pgsql/types';
import { deparseSync } from 'pgsql-deparser';

/** A table as a statement names it: the schema when written, the name as the parser folded it. */
export interface TableRef {
  schema?: string;
  name: string;
}

export function tableOf(rv: RangeVar | undefined): TableRef | undefined {
  if (!rv?.relname) return undefined;
  return rv.schemaname ? { schema: rv.schemaname, name: rv.relname } : { name: rv.relname };
}

/** `schema.name` with each part quoted only when it must be, for messages and fixes. */
export function tableText(t: TableRef): string {
  return t.schema ? `${ident(t.schema)}.${ident(t.name)}` : ident(t.name);
}

/** An identifier as SQL writes it: bare when Postgres would read it back unchanged, quoted otherwise. */
export function ident(name: string): string {
  let bare = name.length > 0 && !(name[0]! >= '0' && name[0]! <= '9');
  for (const ch of name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch === '_')) bare = false;
  }
  return bare && !RESERVED.has(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

const RESERVED = new Set(['select', 'from', 'where', 'table', 'order', 'group', 'user', 'column', 'check', 'default']);

export function sameTable(a: TableRef, b: TableRef): boolean {
  return a.name === b.name && (a.schema === undefined || b.schema === undefined || a.schema === b.schema);
}

export function stringsOf(nodes: Node[] | undefined): string[] {
  return (nodes ?? []).flatMap((n) => ('String' in n && n.String.sval !== undefined ? [n.String.sval] : []));
}

/** A type reduced to what the rules compare: its base name (`varchar`, `numeric`, `int4`), typmods, array-ness. */
export interface TypeInfo {
  base: string;
  mods: number[];
  array: boolean;
  /** SQL text of the type (`numeric(12, 2)`, `character varying(20)[]`). */
  text: string;
}

export function typeInfo(tn: TypeName): TypeInfo {
  const names = stringsOf(tn.names);
  const base = names.at(-1) ?? '';
  const mods = (tn.typmods ?? []).flatMap((m) =>
    'A_Const' in m && m.A_Const.ival !== undefined ? [m.A_Const.ival.ival ?? 0] : [],
  );
  return { base, mods, array: (tn.arrayBounds?.length ?? 0) > 0, text: deparseNode({ TypeName: tn }) };
}

export function deparseNode(node: Node): string {
  return deparseSync(node).trim();
}

/** Every node of a subtree, depth first (the parser's JSON: objects and arrays). */
export function* walk(value: unknown): Generator<Record<string, unknown>> {
  if (Array.isArray(value)) {
    for (const v of value) yield* walk(v);
  } else if (value !== null && typeof value === 'object') {
    yield value as Record<string, unknown>;
    for (const v of Object.values(value)) yield* walk(v);
  }
}
