import { describe, expect, it } from '@jest/globals';
import { ConfigError, DEFAULT_HEALTH_POLICY, healthPolicyOf, loadConfig } from '../../src/config.js';

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
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['LOG_LEVEL', 'loud'],
    ['POSTBOX_ROLE', 'both'],
    ['ADMIN_API_KEY', 'short'],
    ['SSRF_ALLOW_CIDRS', '127.0.0.1'],
    ['WORKER_CONCURRENCY', '0'],
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
