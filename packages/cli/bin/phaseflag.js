#!/usr/bin/env node
// The `phaseflag` command. Committed (not built) so that `npm install` in a fresh clone links it: npm links a
// workspace's bin only when the file exists at install time. It runs the built CLI, or says how to build it.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    'phaseflag: @phaseflag/cli is not built (dist/cli.js is missing).\n' +
      'hint: run `npm run build` at the repository root, then the command again.\n',
  );
  process.exit(1);
}
await import(cli.href);
