import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findingsDir, type Finding } from './record.js';

interface Recorded extends Finding {
  size: string;
  at: string;
}

/** Turns the findings of the last reliability run into test/RELIABILITY.md (one section per file, in order). */
function main(): void {
  const dir = findingsDir();
  if (!existsSync(dir)) throw new Error(`No findings in ${dir}: run the reliability suite first.`);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort();
  const rows = files.flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Recorded),
  );
  if (rows.length === 0) throw new Error(`No findings in ${dir}.`);
  const sizes = [...new Set(rows.map((r) => r.size))].join(', ');
  const first = rows.map((r) => r.at).sort()[0];
  const last = rows.map((r) => r.at).sort()[rows.length - 1];
  const sections = [...new Set(rows.map((r) => r.section))];
  const out = [
    '# Reliability figures',
    '',
    `Written by \`npm run test:reliability:long\` from its own output (size: ${sizes}; run ${first} to ${last},`,
    `Node ${process.version}). Each line is one test that passed: what it tried and what it found.`,
    '',
    ...sections.flatMap((s) => [`## ${s}`, '', ...rows.filter((r) => r.section === s).map((r) => `- ${r.line}`), '']),
  ];
  writeFileSync(join(process.cwd(), 'test', 'RELIABILITY.md'), out.join('\n'));
  console.log(`test/RELIABILITY.md: ${rows.length} lines in ${sections.length} sections.`);
}

main();
