// Fails when a module of packages/postgres/src imports from a layer above its own, or when the source tree has a
// top-level folder or file that no layer names. The layers are the root README's "Architecture" table, top to
// bottom; keep the two in step.
//
// Every relative specifier counts (`import`, `import type`, `export … from`, `import('…')`): a type import that runs
// up a layer ties the lower layer to the upper one as surely as a value import does.
//
// Usage: node --import tsx scripts/check-layers.ts
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'packages/postgres/src');

/** Top to bottom. Entries of one layer may import each other; an entry may import any layer below its own. */
const LAYERS: readonly (readonly string[])[] = [
  ['index.ts', 'internal.ts'],
  ['phaseflag.ts'],
  ['controller'],
  ['api'],
  ['router'],
  ['transitions'],
  ['types.ts'],
  ['operations'],
  ['catalog'],
  ['store'],
  ['driver'],
  ['sql', 'telemetry', 'context.ts'],
];

const SPECIFIER = /(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

function layerOf(entry: string): number {
  return LAYERS.findIndex((layer) => layer.includes(entry));
}

/** The top-level entry of src a path lies in: `operations` for `operations/backfill/runner.ts`. */
function entryOf(path: string): string {
  return relative(SRC, path).split('/')[0]!.replace(/\.js$/, '.ts');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

function main(): number {
  const problems: string[] = [];
  for (const entry of readdirSync(SRC)) {
    if (layerOf(entry) === -1)
      problems.push(`src/${entry} is in no layer: add it to the README's Architecture table and here`);
  }
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(entryOf(file));
    for (const match of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const target = normalize(join(dirname(file), match[1]!));
      if (!target.startsWith(SRC)) continue;
      const to = layerOf(entryOf(target));
      if (to !== -1 && from !== -1 && to < from) {
        problems.push(
          `${relative(ROOT, file)} imports ${match[1]} from a layer above its own (${LAYERS[to]!.join(', ')})`,
        );
      }
    }
  }
  if (problems.length === 0) {
    console.log(`layers: every import of packages/postgres/src runs down (${LAYERS.length} layers)`);
    return 0;
  }
  for (const p of problems) console.error(p);
  return 1;
}

process.exitCode = main();
