import { readFileSync } from 'node:fs';
import { registerBackfill } from './commands/backfill.js';
import { registerCheck } from './commands/check.js';
import { registerGenerate } from './commands/generate.js';
import { registerDev } from './commands/dev.js';
import { registerDrift } from './commands/drift.js';
import { registerGrants, registerInstall } from './commands/grants.js';
import { registerHistory } from './commands/history.js';
import { registerInit } from './commands/init.js';
import { registerLint } from './commands/lint.js';
import { registerPlan } from './commands/plan.js';
import { registerProvision } from './commands/provision.js';
import { registerRehearse } from './commands/rehearse.js';
import { registerRun } from './commands/run.js';
import { registerStatus } from './commands/status.js';
import { registerSteps } from './commands/steps.js';
import { EXIT } from './exit-codes.js';
import { createProgram, run } from './program.js';

// `phaseflag status | head`: a closed pipe is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

// stdout holds what the command prints (with --json, the one JSON document) and nothing else: a library that logs
// through console.log/info/debug (knex's default logger, a pool's warnings) writes on stderr instead.
for (const level of ['log', 'info', 'debug'] as const) console[level] = console.error.bind(console);

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const program = createProgram(version);
registerInit(program);
registerPlan(program);
registerProvision(program);
registerStatus(program);
registerHistory(program);
registerDrift(program);
registerInstall(program);
registerGrants(program);
registerRun(program);
registerBackfill(program);
registerSteps(program);
registerGenerate(program);
registerLint(program);
registerCheck(program);
registerRehearse(program);
registerDev(program);

run(program, process.argv).then(
  () => {
    // Everything is closed by now; a handle left open by a library must not keep a script waiting.
    setTimeout(() => process.exit(), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`PF_UNEXPECTED: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(EXIT.error);
  },
);
