/** JSON lines on stdout via winston. Never log secrets or payloads at info. */
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(level: string): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors(),
      winston.format.json(),
    ),
    defaultMeta: { service: 'postbox' },
    transports: [new winston.transports.Console()],
  });
}

/** A logger that drops everything: for tests and tools that do not want output. */
export function silentLogger(): Logger {
  return winston.createLogger({
    silent: true,
    transports: [new winston.transports.Console({ silent: true })],
  });
}
