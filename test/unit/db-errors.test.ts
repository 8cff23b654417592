/** The one classifier of PostgreSQL and driver errors: what each means for the caller. */
import { describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { classifyDbError, dbAppError, isRequestSpecific } from '../../src/db/errors.js';

function pgError(code: string, fields: { column?: string; constraint?: string } = {}): Error {
  const err = new pg.DatabaseError(`server error ${code}`, 0, 'error');
  err.code = code;
  Object.assign(err, fields);
  return err;
}

function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });
}

describe('classifyDbError', () => {
  it.each([
    '57P01', // admin_shutdown
    '57P02', // crash_shutdown
    '57P03', // cannot_connect_now: starting up or shutting down
    '53300', // too_many_connections
    '53100', // disk_full
    '40001', // serialization_failure
    '40P01', // deadlock_detected
    '57014', // query_canceled (statement_timeout)
    '55P03', // lock_not_available
    '08006', // connection_failure
    '08001',
    '08P01',
    '25006', // read_only_sql_transaction: a failover left us on a standby
  ])('%s is unavailable: 503 with Retry-After', (code) => {
    expect(classifyDbError(pgError(code))?.kind).toBe('unavailable');
    const appError = dbAppError(pgError(code))!;
    expect(appError.status).toBe(503);
    expect(Number(appError.headers?.['Retry-After'])).toBeGreaterThanOrEqual(1);
  });

  it.each([
    socketError('ECONNREFUSED'),
    socketError('ECONNRESET'),
    socketError('EPIPE'),
    socketError('ETIMEDOUT'),
    socketError('EHOSTUNREACH'),
    new Error('Connection terminated unexpectedly'),
    new Error('Connection terminated due to connection timeout'),
    new Error('timeout exceeded when trying to connect'),
    new Error('Client has encountered a connection error and is not queryable'),
    new Error('Cannot use a pool after calling end on the pool'),
  ])('driver error %p is unavailable', (err) => {
    expect(classifyDbError(err)?.kind).toBe('unavailable');
    expect(dbAppError(err)?.status).toBe(503);
  });

  it.each([
    ['22021', 'NUL'],
    ['22P05', 'NUL'],
    ['22P02', 'expected form'],
    ['22001', 'too long'],
    ['22003', 'out of range'],
    ['22007', 'date'],
    ['2200H', 'cannot be stored'],
  ])('data error %s is 400 naming the field given', (code, words) => {
    expect(classifyDbError(pgError(code))?.kind).toBe('invalid_data');
    const appError = dbAppError(pgError(code), { field: 'name' })!;
    expect(appError.status).toBe(400);
    expect(appError.code).toBe('validation_failed');
    expect(appError.details).toEqual([{ path: 'name', message: expect.stringContaining(words) }]);
  });

  it('a data error names the column PostgreSQL reports when the caller gave no field', () => {
    expect(dbAppError(pgError('22001', { column: 'description' }))!.details).toEqual([
      { path: 'description', message: 'is too long' },
    ]);
    expect(dbAppError(pgError('22001'))!.details).toBeUndefined();
  });

  it('54000 (too deep, too large) is 400', () => {
    expect(classifyDbError(pgError('54000'))?.kind).toBe('too_complex');
    expect(dbAppError(pgError('54001'), { field: 'payload' })!.details?.[0]?.path).toBe('payload');
  });

  it('PB400 (postbox.check_event) is 400 naming its COLUMN, with its message', () => {
    const err = pgError('PB400', { column: 'type' });
    err.message = 'type: must not be empty';
    expect(dbAppError(err)!.details).toEqual([{ path: 'type', message: 'must not be empty' }]);
    expect(isRequestSpecific(err)).toBe(true);
  });

  it('23505 is a 409 conflict, 23503 a 404 for what the caller names', () => {
    expect(dbAppError(pgError('23505', { constraint: 'x_key' }))!.status).toBe(409);
    const notFound = dbAppError(pgError('23503'), { referenced: 'tenant' })!;
    expect([notFound.status, notFound.message]).toEqual([404, 'tenant not found']);
  });

  it('errors that are ours are not classified (the middleware answers 500 and logs them)', () => {
    for (const err of [
      pgError('42P01'), // undefined_table
      pgError('42601'), // syntax_error
      pgError('XX000'),
      new TypeError('x is undefined'),
      'a string',
      undefined,
      null,
    ]) {
      expect(classifyDbError(err)).toBeUndefined();
      expect(dbAppError(err)).toBeUndefined();
    }
  });

  it('the message of a data error never reaches the answer (PostgreSQL quotes the value in it)', () => {
    const err = pgError('22P02');
    err.message = 'invalid input syntax for type uuid: "secret-value"';
    const appError = dbAppError(err)!;
    expect(JSON.stringify([appError.message, appError.details])).not.toContain('secret-value');
  });

  it('request-specific errors are the data errors and a missing reference, not outages', () => {
    expect(isRequestSpecific(pgError('22021'))).toBe(true);
    expect(isRequestSpecific(pgError('54000'))).toBe(true);
    expect(isRequestSpecific(pgError('23503'))).toBe(true);
    expect(isRequestSpecific(pgError('57P01'))).toBe(false);
    expect(isRequestSpecific(socketError('ECONNRESET'))).toBe(false);
  });
});
