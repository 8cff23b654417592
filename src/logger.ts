/** JSON lines on stdout via winston. Never log secrets or payloads at info. */
import winston from 'winston';

export type Logger = winston.Logger;

// triple-beam's symbols: where winston keeps an entry's level and its finished line.
const LEVEL = Symbol.for('level');
const MESSAGE = Symbol.for('message');

/** Lines are written at the latest this many at a time, or when the event loop turns. */
const MAX_BATCH = 256;

export function createLogger(level: string): Logger {
  const logger = winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors(),
      winston.format.json(),
    ),
    defaultMeta: { service: 'postbox' },
    transports: [new winston.transports.Console()],
  });
  writeLinesDirectly(logger);
  return logger;
}

/**
 * The same lines as winston's Console transport, made without its stream plumbing and written once per
 * event-loop turn. At LOG_LEVEL info every request and every delivery attempt logs a line; through
 * winston's streams plus one write(2) each, a line cost ~35 µs of CPU in a loaded process, about 8 %
 * of a request or a delivery (measured inside the request log's finish callback: 45 -> 31 µs).
 *
 * winston.Logger#write is what every level method, log() and child loggers end in; here it checks the
 * level (as the transport did), runs the logger's format, and queues the line. Lines keep their order;
 * what is queued when the process exits is written on the way out ('exit': stdout to a pipe or a file
 * is written synchronously), so only a SIGKILL can lose the last turn's lines.
 */
function writeLinesDirectly(logger: Logger): void {
  let lines: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (lines.length === 0) return;
    const text = lines.join('\n') + '\n';
    lines = [];
    process.stdout.write(text);
  };
  process.once('exit', flush);
  const write = (info: Record<string | symbol, unknown>): boolean => {
    if (logger.silent) return true;
    const entryLevel = (info[LEVEL] ?? info.level) as string;
    // As the transport decides: written when the entry's level is at or above the logger's.
    if (!(logger.levels[logger.level]! >= logger.levels[entryLevel]!)) return true;
    const out = logger.format.transform(info as winston.Logform.TransformableInfo, logger.format.options);
    if (!out || out === true) return true; // filtered out by the format
    lines.push((out as unknown as Record<symbol, string>)[MESSAGE]!);
    if (lines.length >= MAX_BATCH) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    return true;
  };
  (logger as unknown as { write: typeof write }).write = write;
}

/** A logger that drops everything: for tests and tools that do not want output. */
export function silentLogger(): Logger {
  return winston.createLogger({
    silent: true,
    transports: [new winston.transports.Console({ silent: true })],
  });
}
