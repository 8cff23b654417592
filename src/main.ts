/**
 * The process: configuration, database (embedded unless DATABASE_URL), migrations, then the API
 * and/or the delivery workers as POSTBOX_ROLE says. SIGTERM/SIGINT shut down in order: stop
 * accepting, drain the workers, close the pool, stop the embedded server.
 */
import { createServer, type Server } from 'node:http';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
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
  const logger = createLogger(config.LOG_LEVEL);
  let postbox: Postbox;
  try {
    postbox = await startPostbox(config, logger);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    logger.error('start-up failed', { error: (err as Error).message });
    process.exit(1);
  }

  let server: Server | undefined;
  if (postbox.app) {
    server = createServer(postbox.app);
    server.keepAliveTimeout = 65_000; // longer than nginx's upstream keepalive_timeout
    await new Promise<void>((resolve) => server!.listen(config.PORT, resolve));
    const address = server.address();
    logger.info('listening', { port: typeof address === 'object' && address ? address.port : config.PORT });
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    const closed = server
      ? new Promise<void>((resolve) => server!.close(() => resolve()))
      : Promise.resolve();
    server?.closeIdleConnections();
    await postbox.stop();
    await closed;
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

void main();
