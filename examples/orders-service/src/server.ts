/**
 * The process entry point: `node --import tsx src/server.ts` (npm start). Configuration comes from the
 * environment (see README); machine-readable events go to stdout as one JSON object per line, logs to stderr.
 *
 * OpenTelemetry starts first and the service is imported after it, so that express, knex and pg are loaded
 * (and instrumented) only once the SDK is in place.
 */
import { startTelemetry } from './telemetry.js';

const telemetry = startTelemetry();
const { startServer, stderrLogger } = await import('./service.js');
const { optionsFromEnv } = await import('./env.js');

const print = (event: object) => process.stdout.write(`${JSON.stringify(event)}\n`);

let options;
try {
  options = optionsFromEnv(process.env);
} catch (error) {
  process.stderr.write(`orders-service: ${(error as Error).message}\n`);
  process.exit(2);
}
const logger = stderrLogger(options.instanceId!);

try {
  const server = await startServer({ ...options, logger, onEvent: print });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: stopping (requests in flight finish, the controller hands over its migrations)`);
    await server.close();
    await telemetry?.shutdown().catch((e: Error) => logger.warn(`telemetry shutdown: ${e.message}`));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
} catch (error) {
  logger.error(`could not start: ${(error as Error).stack ?? String(error)}`);
  await telemetry?.shutdown().catch(() => undefined);
  process.exit(1);
}
