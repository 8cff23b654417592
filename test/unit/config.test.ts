import { describe, expect, it } from '@jest/globals';
import {
  ConfigError,
  DEFAULT_HEALTH_POLICY,
  healthPolicyOf,
  loadConfig,
  retentionPolicyOf,
} from '../../src/config.js';

describe('configuration', () => {
  it('has the contract defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      DATA_DIR: './.data',
      LOG_LEVEL: 'info',
      POSTBOX_ROLE: 'all',
      SSRF_ALLOW_CIDRS: [],
      BODY_LIMIT_BYTES: 1024 * 1024,
      TRUST_PROXY: ['loopback'],
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.ADMIN_API_KEY).toBeUndefined();
  });

  it('reads and converts values', () => {
    const config = loadConfig({
      PORT: '8080',
      SSRF_ALLOW_CIDRS: '127.0.0.0/8, ::1/128',
      POSTBOX_ROLE: 'worker',
    });
    expect(config.PORT).toBe(8080);
    expect(config.SSRF_ALLOW_CIDRS).toEqual(['127.0.0.0/8', '::1/128']);
    expect(config.POSTBOX_ROLE).toBe('worker');
  });

  it.each([
    ['false', false],
    ['2', 2],
    ['loopback, 10.0.0.0/8, fd00::1', ['loopback', '10.0.0.0/8', 'fd00::1']],
  ])('reads TRUST_PROXY=%s as Express takes it', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).TRUST_PROXY).toEqual(expected);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['LOG_LEVEL', 'loud'],
    ['POSTBOX_ROLE', 'both'],
    ['ADMIN_API_KEY', 'short'],
    ['SSRF_ALLOW_CIDRS', '127.0.0.1'],
    ['TRUST_PROXY', 'everyone'],
    ['TRUST_PROXY', '0x7f.1'],
    ['TRUST_PROXY', ' , '],
    ['WORKER_CONCURRENCY', '0'],
    ['RETENTION_PAYLOAD_DAYS', '0'],
    ['RETENTION_ATTEMPT_DAYS', 'a week'],
    ['RETENTION_DLQ_DAYS', '3651'],
    ['RETENTION_AUDIT_DAYS', '-1'],
  ])('a bad %s (%s) stops start-up with one line naming it', (variable, value) => {
    let error: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as Error).message).toMatch(new RegExp(`^invalid configuration: ${variable} `));
    expect((error as Error).message).not.toContain('\n');
  });

  it('checks the breaker cool-down and its maximum together, naming the maximum in one line', () => {
    expect(() => loadConfig({ BREAKER_COOLDOWN_MS: '60000', BREAKER_COOLDOWN_MAX_MS: '30000' })).toThrow(
      new ConfigError('BREAKER_COOLDOWN_MAX_MS', 'must be at least BREAKER_COOLDOWN_MS (60000)'),
    );
    // The default maximum (600000) is below this cool-down too: the pair is checked, not each alone.
    expect(() => loadConfig({ BREAKER_COOLDOWN_MS: '900000' })).toThrow(
      /^invalid configuration: BREAKER_COOLDOWN_MAX_MS /,
    );
    expect(loadConfig({ BREAKER_COOLDOWN_MS: '60000', BREAKER_COOLDOWN_MAX_MS: '60000' })).toMatchObject({
      BREAKER_COOLDOWN_MAX_MS: 60000,
    });
  });

  it('gives each kind of history its own retention, each defaulting to RETENTION_DAYS', () => {
    expect(retentionPolicyOf(loadConfig({}))).toEqual({
      recordDays: 30,
      payloadDays: 30,
      attemptDays: 30,
      dlqDays: 30,
      auditDays: 30,
    });
    expect(retentionPolicyOf(loadConfig({ RETENTION_DAYS: '90' }))).toEqual({
      recordDays: 90,
      payloadDays: 90,
      attemptDays: 90,
      dlqDays: 90,
      auditDays: 90,
    });
    expect(
      retentionPolicyOf(
        loadConfig({
          RETENTION_DAYS: '90',
          RETENTION_PAYLOAD_DAYS: '7',
          RETENTION_ATTEMPT_DAYS: '14',
          RETENTION_DLQ_DAYS: '180',
          RETENTION_AUDIT_DAYS: '365',
        }),
      ),
    ).toEqual({ recordDays: 90, payloadDays: 7, attemptDays: 14, dlqDays: 180, auditDays: 365 });
  });

  it('refuses a payload retention longer than RETENTION_DAYS (its event goes first), in one line naming it', () => {
    let error: unknown;
    try {
      loadConfig({ RETENTION_DAYS: '30', RETENTION_PAYLOAD_DAYS: '60' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('RETENTION_PAYLOAD_DAYS');
    expect((error as Error).message).toBe(
      'invalid configuration: RETENTION_PAYLOAD_DAYS must be at most RETENTION_DAYS (30): a payload goes with its event at the latest',
    );
    expect((error as Error).message).not.toContain('\n');
  });

  it('builds the health policy from the BREAKER_* and WEBHOOK_* settings; its defaults are theirs', () => {
    expect(
      healthPolicyOf(
        loadConfig({
          BREAKER_FAILURE_THRESHOLD: '3',
          BREAKER_COOLDOWN_MS: '1000',
          BREAKER_COOLDOWN_MAX_MS: '8000',
          WEBHOOK_AUTO_DISABLE_AFTER_MS: '60000',
        }),
      ),
    ).toEqual({ failureThreshold: 3, cooldownMs: 1000, cooldownMaxMs: 8000, autoDisableAfterMs: 60000 });
    expect(DEFAULT_HEALTH_POLICY).toEqual({
      failureThreshold: 5,
      cooldownMs: 30_000,
      cooldownMaxMs: 600_000,
      autoDisableAfterMs: 5 * 86_400_000,
    });
  });
});
