/**
 * The one place that reads PostgreSQL's and the driver's errors (SQLSTATE codes and node-postgres'
 * connection errors) and says what they mean for the caller:
 *
 * - unavailable: the database is down, restarting, out of connections, or the statement lost a
 *   conflict (serialization, deadlock, timeout). Nothing the caller sent is wrong: 503 + Retry-After.
 * - invalid_data (class 22) and too_complex (class 54): the caller's value cannot be stored: 400,
 *   naming the field where the caller or the error knows it.
 * - invalid_event: an ingest check's own refusal (SQLSTATE PB400, COLUMN = the field or the payload's
 *   JSON path; a DETAIL ending in "(input row N)" says which event of the input): 400.
 * - unique_violation (23505) and foreign_key_violation (23503): the caller decides (409, 404).
 *
 * Anything else is ours (a bug, a missing table): the error middleware logs it and answers 500.
 */
import { AppError } from '../errors.js';

export type DbFailure =
  | { kind: 'unavailable'; reason: string; retryAfterSeconds: number }
  | { kind: 'invalid_data'; code: string; column?: string }
  | { kind: 'too_complex'; code: string }
  /** An ingest check refused an event (PB400): its message is ours. `ord`: its position in the input. */
  | { kind: 'invalid_event'; field: string; message: string; ord?: number }
  | { kind: 'unique_violation'; constraint?: string }
  | { kind: 'foreign_key_violation'; constraint?: string };

/** A restart or failover usually takes seconds; a lost conflict can be retried at once. */
const RETRY_AFTER_RESTART = 2;
const RETRY_AFTER_CONFLICT = 1;

/** SQLSTATEs after which the same request, sent again later, is expected to succeed. */
const TRANSIENT_CODES: Record<string, { reason: string; retryAfterSeconds: number }> = {
  '40001': { reason: 'serialization failure', retryAfterSeconds: RETRY_AFTER_CONFLICT },
  '40P01': { reason: 'deadlock', retryAfterSeconds: RETRY_AFTER_CONFLICT },
  '55P03': { reason: 'lock not available', retryAfterSeconds: RETRY_AFTER_CONFLICT },
  '57014': { reason: 'statement timeout or cancel', retryAfterSeconds: RETRY_AFTER_CONFLICT },
  '57P01': { reason: 'database shutting down', retryAfterSeconds: RETRY_AFTER_RESTART },
  '57P02': { reason: 'database crashed', retryAfterSeconds: RETRY_AFTER_RESTART },
  '57P03': { reason: 'database starting or shutting down', retryAfterSeconds: RETRY_AFTER_RESTART },
  '57P05': { reason: 'idle session timeout', retryAfterSeconds: RETRY_AFTER_CONFLICT },
  '25006': { reason: 'database is read-only (failover)', retryAfterSeconds: RETRY_AFTER_RESTART },
};

/** Classes whose every code is transient: 08 connection exception, 53 insufficient resources. */
const TRANSIENT_CLASSES: Record<string, string> = {
  '08': 'connection failure',
  '53': 'database out of resources',
};

/** Socket-level codes node-postgres passes through when the server cannot be reached. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

/** node-postgres and pg-pool report these conditions by message only. */
const DRIVER_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout|Cannot use a pool after calling end|Client was closed and is not queryable/;

interface ErrorFields {
  code?: unknown;
  message?: unknown;
  detail?: unknown;
  column?: unknown;
  constraint?: unknown;
}

/** What a thrown value means, if it is a database or driver error; undefined otherwise. */
export function classifyDbError(err: unknown): DbFailure | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as ErrorFields;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : '';
  const constraint = typeof e.constraint === 'string' ? e.constraint : undefined;
  if (code === 'PB400') {
    const field = typeof e.column === 'string' ? e.column : 'event';
    const row = typeof e.detail === 'string' ? /\(input row (\d+)\)$/.exec(e.detail) : null;
    return {
      kind: 'invalid_event',
      field,
      message: message.replace(`${field}: `, ''),
      ...(row ? { ord: Number(row[1]) } : {}),
    };
  }
  // Socket codes first: EPIPE has the shape of a SQLSTATE.
  if ((code && SOCKET_CODES.has(code)) || DRIVER_MESSAGES.test(message))
    return {
      kind: 'unavailable',
      reason: 'database connection lost',
      retryAfterSeconds: RETRY_AFTER_RESTART,
    };
  if (code && /^[0-9A-Z]{5}$/.test(code)) {
    const transient = TRANSIENT_CODES[code];
    if (transient) return { kind: 'unavailable', ...transient };
    const klass = TRANSIENT_CLASSES[code.slice(0, 2)];
    if (klass) return { kind: 'unavailable', reason: klass, retryAfterSeconds: RETRY_AFTER_RESTART };
    if (code.startsWith('22'))
      return { kind: 'invalid_data', code, ...(typeof e.column === 'string' ? { column: e.column } : {}) };
    if (code.startsWith('54')) return { kind: 'too_complex', code };
    if (code === '23505') return { kind: 'unique_violation', ...(constraint ? { constraint } : {}) };
    if (code === '23503') return { kind: 'foreign_key_violation', ...(constraint ? { constraint } : {}) };
  }
  return undefined;
}

/** Why a class-22 value was refused, in words that never repeat the value. */
function invalidDataMessage(code: string): string {
  switch (code) {
    case '22021': // character_not_in_repertoire: NUL in text
    case '22P05': // untranslatable_character: \u0000 in jsonb
      return 'contains characters that cannot be stored (NUL or an unpaired surrogate)';
    case '22001':
      return 'is too long';
    case '22003':
      return 'is out of range';
    case '22007':
    case '22008':
      return 'is not a valid date and time';
    case '22P02':
      return 'does not have the expected form';
    default:
      return 'cannot be stored';
  }
}

export interface DbErrorHints {
  /** The request field the failing statement stored, reported as the error's path. */
  field?: string;
  /** What a foreign key names (e.g. 'tenant'): a violation answers 404 for it. */
  referenced?: string;
  /** Where the event at input position `ord` is in the request (`events.3.` in a batch). */
  eventPath?: (ord: number) => string;
}

/** The AppError a database error becomes, or undefined when it is not one the caller caused or can retry. */
export function dbAppError(err: unknown, hints: DbErrorHints = {}): AppError | undefined {
  const failure = classifyDbError(err);
  switch (failure?.kind) {
    case 'unavailable':
      return AppError.unavailable(
        'the database is temporarily unavailable, retry',
        failure.retryAfterSeconds,
      );
    case 'invalid_data':
      return AppError.invalidValue(hints.field ?? failure.column, invalidDataMessage(failure.code));
    case 'too_complex':
      return AppError.invalidValue(hints.field, 'is too large or too deeply nested to store');
    case 'invalid_event': {
      const at = failure.ord !== undefined && hints.eventPath ? hints.eventPath(failure.ord) : '';
      return AppError.validation('event is not valid', [
        { path: at + failure.field, message: failure.message },
      ]);
    }
    case 'unique_violation':
      return AppError.conflict('an object with these values already exists');
    case 'foreign_key_violation':
      return AppError.notFound(hints.referenced ?? 'referenced object');
    default:
      return undefined;
  }
}

/** Errors caused by one request's data, raised by the statement itself (so nothing was stored). */
export function isRequestSpecific(err: unknown): boolean {
  const kind = classifyDbError(err)?.kind;
  return (
    kind === 'invalid_data' ||
    kind === 'too_complex' ||
    kind === 'invalid_event' ||
    kind === 'foreign_key_violation'
  );
}
