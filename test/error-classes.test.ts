import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CLASS_BY_CODE, type ErrorClassName, type ErrorCode } from '@phaseflag/core';
import ts from 'typescript';

/**
 * Each error code is thrown by one class, the one core's ERROR_CLASS_BY_CODE names. The constructors' types
 * enforce it where the code is a literal of a known class; this reads every source file of every package and
 * example and checks each place a code is written next to a class: `new XxxError('PF_…')` (a conditional's
 * branches included), `new XxxError(…, { code: 'PF_…' })`, `super('PF_…')` in a class, and catalog's
 * `fail('PF_…')` helper (a CatalogError).
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TABLE: Readonly<Record<string, ErrorClassName>> = ERROR_CLASS_BY_CODE;
const ENGINE_CLASSES = new Set<string>([...Object.values(TABLE), 'PhaseflagError']);
/** Helpers that throw a fixed class with the code they are given. */
const HELPERS: Readonly<Record<string, ErrorClassName>> = { fail: 'CatalogError' };

interface Site {
  file: string;
  line: number;
  cls: string;
  code: string;
}

function sourceFiles(): string[] {
  const dirs = ['packages', 'examples'].flatMap((top) =>
    readdirSync(join(ROOT, top), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(ROOT, top, d.name, 'src')),
  );
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (/\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(join(dir, e.name));
    }
  };
  dirs.forEach(walk);
  return out;
}

/** The PF_ string literals an expression can evaluate to (a literal, a conditional's branches, parentheses). */
function codesIn(node: ts.Node | undefined): string[] {
  if (!node) return [];
  if (ts.isStringLiteralLike(node)) return /^PF_[A-Z0-9_]+$/.test(node.text) ? [node.text] : [];
  if (ts.isParenthesizedExpression(node) || ts.isAsExpression(node) || ts.isSatisfiesExpression(node))
    return codesIn(node.expression);
  if (ts.isConditionalExpression(node)) return [...codesIn(node.whenTrue), ...codesIn(node.whenFalse)];
  return [];
}

/** `code: …` of an object literal argument (GuardRefusedError takes its code among its options). */
function codeOption(node: ts.Node | undefined): string[] {
  if (!node || !ts.isObjectLiteralExpression(node)) return [];
  return node.properties.flatMap((p) =>
    ts.isPropertyAssignment(p) && p.name.getText() === 'code' ? codesIn(p.initializer) : [],
  );
}

function scan(file: string): Site[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(
    file,
    text,
    ts.ScriptTarget.Latest,
    true,
    file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS,
  );
  const sites: Site[] = [];
  const add = (node: ts.Node, cls: string, codes: string[]): void => {
    for (const code of codes)
      sites.push({
        file: relative(ROOT, file),
        line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1,
        cls,
        code,
      });
  };
  const classOf = (node: ts.Node): string | undefined => {
    for (let n: ts.Node | undefined = node.parent; n; n = n.parent) if (ts.isClassLike(n)) return n.name?.text;
    return undefined;
  };
  const visit = (node: ts.Node): void => {
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression)) {
      const args = node.arguments ?? [];
      add(node, node.expression.text, [...codesIn(args[0]), ...args.flatMap((a) => codeOption(a))]);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.SuperKeyword) {
      const cls = classOf(node);
      if (cls) add(node, cls, codesIn(node.arguments[0]));
    } else if (ts.isCallExpression(node)) {
      const callee = ts.isIdentifier(node.expression)
        ? node.expression.text
        : ts.isPropertyAccessExpression(node.expression)
          ? node.expression.name.text
          : undefined;
      const cls = callee === undefined ? undefined : HELPERS[callee];
      if (cls) add(node, cls, codesIn(node.arguments[0]));
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return sites;
}

describe('error codes in the source', () => {
  const sites = sourceFiles().flatMap(scan);

  it("finds the throw sites (the scan reads the packages' sources)", () => {
    const classes = new Set(sites.map((s) => s.cls));
    for (const cls of [
      'ValidationError',
      'CatalogError',
      'ConflictError',
      'StateError',
      'GuardRefusedError',
      'UnleashUnavailableError',
      'CliError',
    ]) {
      assert.ok(classes.has(cls), `no site of ${cls} found: ${[...classes].join(', ')}`);
    }
    assert.ok(sites.length > 50, `only ${sites.length} sites`);
  });

  it("throws each engine code with the class core's table names for it, and never with the base class", () => {
    const wrong = sites
      .filter((s) => Object.prototype.hasOwnProperty.call(TABLE, s.code) && TABLE[s.code as ErrorCode] !== s.cls)
      .map((s) => `${s.file}:${s.line}: ${s.code} thrown as ${s.cls}, the table says ${TABLE[s.code as ErrorCode]}`);
    assert.deepEqual(wrong, []);
  });

  it("gives the engine's classes only the engine's codes, and other classes (CliError, TestkitError) only codes of their own", () => {
    const wrong = sites
      .filter((s) => !Object.prototype.hasOwnProperty.call(TABLE, s.code) && ENGINE_CLASSES.has(s.cls))
      .map((s) => `${s.file}:${s.line}: ${s.cls} with ${s.code}, which is not in core's table`);
    assert.deepEqual(wrong, []);
  });
});
