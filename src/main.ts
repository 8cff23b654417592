/**
 * The process: configuration, database (embedded unless DATABASE_URL), migrations, then the API
 * and/or the delivery workers as POSTBOX_ROLE says; a worker-only process still serves /health,
 * /ready and /metrics on PORT. SIGTERM/SIGINT shut down in order: stop accepting and finish running
 * requests, drain the workers, close the pool, stop the embedded server.
 */
import { createProbeApp } from './api/probe-app.js';
import { ConfigError, loadConfig } from './config.js';
import { USER_AGENT } from './delivery/sender.js';
import { createLogger } from './logger.js';
import { readyLine, startupBanner } from './runtime/banner.js';
import { startHttpServer } from './runtime/http-server.js';
import { startPostbox, type Postbox } from './runtime/postbox.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const tty = process.stdout.isTTY === true;
  if (tty) process.stdout.write(startupBanner(config, USER_AGENT.replace('Postbox/', '')).join('\n') + '\n');
  const logger = createLogger(config.LOG_LEVEL);
  // Signals are taken from the start: one that arrives while Postbox is still starting (the engine may
  // already be claiming) is acted on once it has started, instead of ending the process by default.
  const stopper: { shutdown?: (signal: string) => Promise<void> } = {};
  let signalled: string | undefined;
  const onSignal = (signal: string) =>
    stopper.shutdown ? void stopper.shutdown(signal) : (signalled ??= signal);
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  let postbox: Postbox;
  try {
    postbox = await startPostbox(config, logger);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    logger.error('start-up failed', { error: (err as Error).message });
    if (tty) process.stderr.write(`\nPostbox could not start: ${(err as Error).message}\n`);
    process.exit(1);
  }

  const http = await startHttpServer(postbox.app ?? createProbeApp({ ...postbox, logger }), config.PORT);
  logger.info('listening', { port: http.port, role: config.POSTBOX_ROLE });
  if (tty) process.stdout.write(readyLine(config, http.port) + '\n');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    // Requests first: none may reach the pool after postbox.stop() has closed it.
    await http.drain(config.SHUTDOWN_GRACE_MS);
    await postbox.stop();
    logger.info('stopped');
    process.exit(0);
  };
  stopper.shutdown = shutdown;
  if (signalled) void shutdown(signalled);
}

void main();
