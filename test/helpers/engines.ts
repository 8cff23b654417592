/**
 * Delivery engines started by hand against a test app's database (the app itself runs with
 * POSTBOX_ROLE=api), as separate worker processes would be: several may share one database.
 *
 *   const engines = engineStarter(app, { pollIntervalMs: 100 });
 *   await engines.start({ concurrency: 50 });
 *   afterEach(() => engines.stopAll());
 */
import {
  startDeliveryEngine,
  type DeliveryEngine,
  type DeliveryEngineOptions,
} from '../../src/delivery/engine.js';
import { silentLogger } from '../../src/logger.js';
import type { TestApp } from './app.js';
import { testSecretBox } from './fixtures-sql.js';

export interface EngineStarter {
  start(over?: Partial<DeliveryEngineOptions>): Promise<DeliveryEngine>;
  /** Stops every engine started so far (no grace). */
  stopAll(): Promise<void>;
}

export function engineStarter(app: TestApp, defaults: Partial<DeliveryEngineOptions> = {}): EngineStarter {
  const engines: DeliveryEngine[] = [];
  return {
    async start(over = {}) {
      const e = await startDeliveryEngine({
        pool: app.db.pool,
        databaseUrl: app.db.url,
        secretBox: testSecretBox,
        logger: silentLogger(),
        concurrency: 20,
        claimBatchSize: 20,
        leaseSeconds: 30,
        pollIntervalMs: 100,
        shutdownGraceMs: 0,
        ssrfAllowCidrs: ['127.0.0.0/8'],
        ...defaults,
        ...over,
      });
      engines.push(e);
      return e;
    },
    async stopAll() {
      await Promise.all(engines.splice(0).map((e) => e.stop(0)));
    },
  };
}
