/**
 * What a person starting Postbox in a terminal reads first: where the API and console are, where the
 * admin key is, where the data lives. Only when stdout is a TTY; logs stay JSON lines otherwise.
 */
import { join, resolve } from 'node:path';
import type { Config } from '../config.js';

export function startupBanner(config: Config, version: string): string[] {
  const base = `http://localhost:${config.PORT}`;
  const lines = [`Postbox ${version} is starting (POSTBOX_ROLE=${config.POSTBOX_ROLE}).`];
  if (config.POSTBOX_ROLE === 'worker') {
    lines.push(`  Probes:    ${base}/health, ${base}/ready, ${base}/metrics (no API in a worker process)`);
  } else {
    lines.push(`  API:       ${base}`, `  Console:   ${base}/console`);
  }
  lines.push(
    config.ADMIN_API_KEY
      ? '  Admin key: from ADMIN_API_KEY'
      : `  Admin key: in ${resolve(join(config.DATA_DIR, 'admin-api-key'))} (created on the first start)`,
    config.DATABASE_URL
      ? '  Database:  DATABASE_URL'
      : `  Database:  embedded PostgreSQL, data in ${resolve(join(config.DATA_DIR, 'pg'))}`,
    'Stop with Ctrl-C. Logs follow as JSON lines.',
    '',
  );
  return lines;
}

export function readyLine(config: Config, port: number): string {
  return config.POSTBOX_ROLE === 'worker'
    ? `Postbox worker is ready; probes on http://localhost:${port}.`
    : `Postbox is ready: API on http://localhost:${port}, console on http://localhost:${port}/console.`;
}
