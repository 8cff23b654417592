/**
 * The delivery engine of one process: listener (wake-up) → claimer (producer) → sender (executor) →
 * recorder (completer). startDeliveryEngine wires them; stop() shuts them down in the order that loses
 * nothing: stop claiming, let attempts finish within the grace, abort the rest (an aborted request
 * that went out is recorded as a failed attempt, due again at once), write every result, give claims
 * whose request never went out back, stop listening.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { DEFAULT_HEALTH_POLICY, healthPolicyOf, type Config, type HealthPolicy } from '../config.js';
import type { Logger } from '../logger.js';
import { DeliverySpans } from '../observability/spans.js';
import type { Tracing } from '../observability/tracing.js';
import { releaseClaims } from '../queries/deliveries.js';
import type { SecretBox } from '../security/secret-box.js';
import { Claimer } from './claimer.js';
import { createExecutor } from './executor.js';
import { reportDeadLettered, reportHealth } from './health-report.js';
import type { DeliveryEngineHooks } from './hooks.js';
import { createHttpAgents, destroyHttpAgents, type HttpAgentFactory } from './http-agents.js';
import { GoneWorkerCheck } from './gone-workers.js';
import { Listener } from './listener.js';
import { Recorder } from './recorder.js';
import { Sender } from './sender.js';

export interface DeliveryEngineOptions {
  /** Pool for claims and result writes. */
  pool: pg.Pool;
  /** The same database, for the dedicated LISTEN connection. */
  databaseUrl: string;
  /** Decrypts webhook secrets for signing. */
  secretBox: SecretBox;
  logger: Logger;
  /** Deliveries sent at once by this engine (WORKER_CONCURRENCY). */
  concurrency: number;
  /** Most deliveries one claim takes (CLAIM_BATCH_SIZE). */
  claimBatchSize: number;
  /** Claim lease in seconds (LEASE_SECONDS); raised per delivery to its timeout + 5 s. */
  leaseSeconds: number;
  /** Fallback poll when no NOTIFY arrives (POLL_INTERVAL_MS). */
  pollIntervalMs: number;
  /** Default grace of stop(): in-flight attempts may finish this long (SHUTDOWN_GRACE_MS). */
  shutdownGraceMs: number;
  /** CIDRs deliveries may reach although private (SSRF_ALLOW_CIDRS), passed to the agent factory. */
  ssrfAllowCidrs: readonly string[];
  /** Builds the HTTP agents (default: keep-alive agents from http-agents.ts). */
  agentFactory?: HttpAgentFactory;
  /** lease_owner of this engine; default host:pid:random, unique per engine. */
  workerId?: string;
  /** Results written per batch at most (default 500). */
  recordBatchSize?: number;
  /** A result waits at most this long before its batch is written (default 5 ms). */
  recordFlushMs?: number;
  /** After a claim that ran dry at a trickle, the next waits this long after it (default 10 ms; claimer.ts). */
  claimCooldownMs?: number;
  /** Circuit breaker and automatic disabling (default DEFAULT_HEALTH_POLICY). */
  health?: HealthPolicy;
  hooks?: DeliveryEngineHooks;
  /** Spans for each claim, attempt and record (default: none). */
  tracing?: Tracing;
}

export interface DeliveryEngine {
  /** lease_owner on the rows this engine claims. */
  readonly workerId: string;
  /** Deliveries being sent right now. */
  readonly inFlight: number;
  /** Claims at once if slots are free (as a NOTIFY would). */
  wake(): void;
  /** Stops the engine; idempotent. `graceMs` defaults to shutdownGraceMs. */
  stop(graceMs?: number): Promise<void>;
}

/** After the grace, how long aborted attempts get to unwind and results to be written. */
const ABORT_SETTLE_MS = 1000;
const RECORD_DRAIN_MS = 5000;
/** Claims at most ~100 times a second while the queue runs dry: docs/perf.md, "The claim's cooldown". */
const DEFAULT_CLAIM_COOLDOWN_MS = 10;

/** The engine options a Config implies. */
export function deliveryEngineOptions(
  config: Config,
  deps: Pick<DeliveryEngineOptions, 'pool' | 'databaseUrl' | 'secretBox' | 'logger'>,
): DeliveryEngineOptions {
  return {
    ...deps,
    concurrency: config.WORKER_CONCURRENCY,
    claimBatchSize: config.CLAIM_BATCH_SIZE,
    leaseSeconds: config.LEASE_SECONDS,
    pollIntervalMs: config.POLL_INTERVAL_MS,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    ssrfAllowCidrs: config.SSRF_ALLOW_CIDRS,
    health: healthPolicyOf(config),
  };
}

export async function startDeliveryEngine(o: DeliveryEngineOptions): Promise<DeliveryEngine> {
  const workerId = o.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const { logger, hooks = {} } = o;
  const agents = (o.agentFactory ?? createHttpAgents)({
    allowCidrs: o.ssrfAllowCidrs,
    maxSocketsPerHost: o.concurrency,
    maxFreeSocketsPerHost: Math.min(o.concurrency, 256),
  });
  const sender = new Sender({ agents, secretBox: o.secretBox });
  // Undefined unless tracing is on: the engine then does no span work at all.
  const spans = o.tracing?.enabled ? new DeliverySpans(o.tracing.tracer) : undefined;

  // eslint-disable-next-line prefer-const -- the claimer and recorder refer to each other
  let claimer: Claimer;
  const recorder = new Recorder({
    pool: o.pool,
    logger,
    workerId,
    maxBatch: o.recordBatchSize ?? 500,
    flushIntervalMs: o.recordFlushMs ?? 5,
    health: o.health ?? DEFAULT_HEALTH_POLICY,
    onFlushed: (results, summary, timing) => {
      spans?.recorded(results, timing.startedAt, timing.endedAt);
      hooks.onRecorded?.(results, summary);
      reportHealth(logger, summary, hooks);
      claimer.released(results); // their slots are free now, here and in the database's counts
    },
  });

  claimer = new Claimer({
    pool: o.pool,
    logger,
    workerId,
    concurrency: o.concurrency,
    batchSize: o.claimBatchSize,
    leaseSeconds: o.leaseSeconds,
    pollIntervalMs: o.pollIntervalMs,
    cooldownMs: o.claimCooldownMs ?? DEFAULT_CLAIM_COOLDOWN_MS,
    execute: createExecutor({ sender, recorder, logger, hooks, spans }),
    // Up to `concurrency` unwritten results are free; beyond that they hold claim slots (backpressure).
    heldElsewhere: () => Math.max(0, recorder.pending - o.concurrency),
    onClaim: hooks.onClaim,
    ...(spans ? { onClaimedRows: spans.claimed.bind(spans) } : {}),
    onDeadLettered: (dead) => reportDeadLettered(logger, dead, hooks),
  });

  const listener = new Listener({
    connectionString: o.databaseUrl,
    logger,
    workerId,
    onWake: () => claimer.wake(),
  });
  await listener.start();
  const goneWorkers = new GoneWorkerCheck({
    pool: o.pool,
    logger,
    workerId,
    sessionSince: () => listener.connectedSince,
    onReleased: () => claimer.wake(),
  });
  claimer.start();
  goneWorkers.start();
  logger.info('delivery engine started', { worker_id: workerId, concurrency: o.concurrency });

  let stopping: Promise<void> | undefined;
  const stop = async (graceMs: number): Promise<void> => {
    await goneWorkers.stop();
    await claimer.stop();
    const graceEnd = Date.now() + graceMs;
    await claimer.idle(graceEnd);
    const unfinished = claimer.inFlight;
    if (unfinished > 0) await claimer.abortAll(Date.now() + ABORT_SETTLE_MS);
    await recorder.drain(Date.now() + RECORD_DRAIN_MS);
    recorder.close();
    // Whatever this engine still holds in flight did not finish: give it back for another worker now
    // rather than after the lease.
    let released = 0;
    try {
      released = await releaseClaims(o.pool, workerId);
    } catch (err) {
      logger.error('releasing claimed deliveries failed; their leases will expire', {
        error: (err as Error).message,
      });
    }
    await listener.close();
    destroyHttpAgents(agents);
    logger.info('delivery engine stopped', { worker_id: workerId, aborted: unfinished, released });
  };

  return {
    workerId,
    get inFlight() {
      return claimer.inFlight;
    },
    wake: () => claimer.wake(),
    stop(graceMs = o.shutdownGraceMs) {
      stopping ??= stop(graceMs);
      return stopping;
    },
  };
}
