/** Whose failure an attempt was: receivers' failures never count against Postbox's success SLO. */
import { describe, expect, it } from '@jest/globals';
import { failureCause } from '../../src/delivery/failure-cause.js';

const attempt = (r: Partial<Parameters<typeof failureCause>[0]>) =>
  failureCause({ outcome: 'retry', statusCode: null, error: null, ...r });

describe('failureCause', () => {
  it('a success has no cause', () => {
    expect(attempt({ outcome: 'succeeded', statusCode: 200 })).toBeNull();
  });
  it('any answer that is not 2xx is the receiver status, for retries and the last attempt alike', () => {
    expect(attempt({ statusCode: 500, error: 'HTTP 500' })).toBe('receiver_status');
    expect(
      attempt({ outcome: 'dead', statusCode: 302, error: 'HTTP 302 (redirects are not followed)' }),
    ).toBe('receiver_status');
  });
  it('no answer within the timeout is a receiver timeout', () => {
    expect(attempt({ error: 'timeout after 15000 ms' })).toBe('receiver_timeout');
  });
  it('no connection is the receiver being unreachable', () => {
    expect(attempt({ error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9' })).toBe('receiver_unreachable');
    expect(attempt({ error: 'ENOTFOUND: getaddrinfo ENOTFOUND nowhere.invalid' })).toBe(
      'receiver_unreachable',
    );
  });
  it("a secret Postbox cannot decrypt is Postbox's failure", () => {
    expect(attempt({ error: 'cannot decrypt the webhook secret' })).toBe('postbox');
  });
  it("an attempt cut short by shutdown is neither side's", () => {
    expect(attempt({ interrupted: true, error: 'aborted by shutdown' })).toBe('shutdown');
    expect(attempt({ interrupted: true, statusCode: 500 })).toBe('shutdown');
  });
});
