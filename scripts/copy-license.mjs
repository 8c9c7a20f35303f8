// A package's `prepack` (and, with --remove, its `postpack`): the repository's LICENSE goes into every packed
// package without a copy per package in git. Run from the package's folder, as npm runs lifecycle scripts.
import { copyFileSync, rmSync } from 'node:fs';
/* global process, URL -- Node globals; this config lints .mjs files with the browser-neutral defaults */

const root = new URL('../LICENSE', import.meta.url);
if (process.argv.includes('--remove')) rmSync('LICENSE', { force: true });
else copyFileSync(root, 'LICENSE');
