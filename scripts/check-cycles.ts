// Fails on any import cycle between this repository's own TypeScript files, and prints each one.
//
// Every way one file names another counts: `import` and `import type`, `export … from` and `export type … from`,
// `import x = require()`, `import('…')` calls and `import('…').T` types. A type-only cycle is still a cycle: the
// files cannot be read, moved or split apart from each other. Specifiers are resolved the way the compiler resolves
// them (the root tsconfig.json's options), so `./foo.js` is `./foo.ts` and a folder is its index; imports that
// resolve outside the checked folders (packages, through node_modules) are not followed: npm workspaces and turbo
// already refuse a cycle between packages.
//
// Usage: node --import tsx scripts/check-cycles.ts [folder…]   (default: every folder `npm run lint` covers)
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_FOLDERS = ['packages/*/src', 'packages/*/test', 'examples/*', 'test', 'bench', 'scripts'];
const SKIPPED_FOLDERS = new Set(['node_modules', 'dist', '.turbo', '.git']);

interface Edge {
  to: string;
  typeOnly: boolean;
}

function main(argv: string[]): number {
  const folders = (argv.length > 0 ? argv : DEFAULT_FOLDERS).flatMap(expand);
  const files = new Set(folders.flatMap((folder) => sourceFiles(folder)));
  const options = compilerOptions();
  const host = ts.createCompilerHost(options);
  const graph = new Map<string, Edge[]>();
  for (const file of files) {
    // One edge per imported file: type-only when every import of it is.
    const edges = new Map<string, Edge>();
    for (const { specifier, typeOnly } of importsOf(file)) {
      const resolved = ts.resolveModuleName(specifier, file, options, host).resolvedModule?.resolvedFileName;
      const to = resolved === undefined ? undefined : resolve(resolved);
      if (to === undefined || !files.has(to)) continue;
      edges.set(to, { to, typeOnly: typeOnly && (edges.get(to)?.typeOnly ?? true) });
    }
    graph.set(file, [...edges.values()]);
  }

  const cycles = stronglyConnected(graph).filter(
    (scc) => scc.length > 1 || (graph.get(scc[0]!) ?? []).some((e) => e.to === scc[0]),
  );
  if (cycles.length === 0) {
    console.log(`import cycles: none among ${files.size} files`);
    return 0;
  }
  for (const scc of cycles) printCycle(scc, graph);
  console.error(`import cycles: ${cycles.length} (type imports count; break each by moving what both sides share)`);
  return 1;
}

/** `packages/*` style folder patterns (a `*` stands for one folder level) to the folders that exist. */
function expand(pattern: string): string[] {
  let found = [ROOT];
  for (const part of pattern.split('/')) {
    found = found.flatMap((base) =>
      part === '*' ? readdirSync(base).map((name) => join(base, name)) : [join(base, part)],
    );
    found = found.filter((path) => isDirectory(path) && !SKIPPED_FOLDERS.has(path.split('/').pop()!));
  }
  return found;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return SKIPPED_FOLDERS.has(entry.name) ? [] : sourceFiles(path);
    return /\.(m|c)?tsx?$/.test(entry.name) && !/\.d\.(m|c)?ts$/.test(entry.name) ? [path] : [];
  });
}

function compilerOptions(): ts.CompilerOptions {
  const path = join(ROOT, 'tsconfig.json');
  const read = ts.readConfigFile(path, (p) => ts.sys.readFile(p));
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  return ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT, undefined, path).options;
}

function importsOf(file: string): Array<{ specifier: string; typeOnly: boolean }> {
  const text = ts.sys.readFile(file) ?? '';
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: Array<{ specifier: string; typeOnly: boolean }> = [];
  const add = (node: ts.Node | undefined, typeOnly: boolean) => {
    if (node && ts.isStringLiteralLike(node)) found.push({ specifier: node.text, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const namedTypesOnly =
        clause?.name === undefined &&
        clause?.namedBindings !== undefined &&
        ts.isNamedImports(clause.namedBindings) &&
        clause.namedBindings.elements.length > 0 &&
        clause.namedBindings.elements.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, clause?.isTypeOnly === true || namedTypesOnly);
    } else if (ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Tarjan's algorithm: the groups of files that reach each other. */
function stronglyConnected(graph: Map<string, Edge[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const { to } of graph.get(v) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(v, Math.min(low.get(v)!, index.get(to)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      groups.push(group.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return groups;
}

/** The shortest way from `start` back to itself inside the group (breadth first). */
function shortestLoop(start: string, members: Set<string>, graph: Map<string, Edge[]>): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const { to } of graph.get(v) ?? []) {
      if (!members.has(to)) continue;
      if (to === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start];
      }
      if (!previous.has(to)) {
        previous.set(to, v);
        queue.push(to);
      }
    }
  }
  return [start];
}

function printCycle(scc: string[], graph: Map<string, Edge[]>): void {
  const members = new Set(scc);
  const name = (file: string) => relative(ROOT, file);
  const loops = scc.map((file) => shortestLoop(file, members, graph));
  const shortest = loops.reduce((a, b) => (b.length < a.length ? b : a));
  console.error(`import cycle among ${scc.length} file(s):`);
  console.error(`  ${shortest.map(name).join('\n    → ')}`);
  if (scc.length > 2) {
    console.error('  every import inside it:');
    for (const file of scc) {
      for (const { to, typeOnly } of graph.get(file) ?? []) {
        if (members.has(to)) console.error(`    ${name(file)} → ${name(to)}${typeOnly ? ' (type)' : ''}`);
      }
    }
  }
}

process.exitCode = main(process.argv.slice(2));
