/**
 * Proving that nothing happened without sleeping: count the engine's claim rounds and wait until a
 * few more have run. A round that ran and took no rows is the engine looking and finding nothing to
 * send, which a fixed sleep only hopes for.
 *
 *   const rounds = claimRounds();
 *   await engines.start({ hooks: rounds.hooks });
 *   ...
 *   expect(await rounds.claimedInNext(3)).toBe(0);
 *
 * Claims of one engine never overlap (claimer.ts runs one at a time), so once one round has completed
 * after a call, every later round began after it.
 */
import type { DeliveryEngineHooks } from '../../src/delivery/hooks.js';
import type { Histogram } from 'prom-client';
import type { Metrics } from '../../src/observability/metrics.js';
import { waitFor } from './wait.js';

/** Claim rounds completed so far and the rows they took. */
export interface ClaimTally {
  rounds: number;
  rows: number;
}

export interface ClaimRounds {
  /** Waits until `n` rounds that began after this call have completed; resolves to the rows they took. */
  claimedInNext(n: number, timeoutMs?: number): Promise<number>;
}

export interface HookedClaimRounds extends ClaimRounds {
  /** Pass to the engine (merged with any other hooks the test needs). */
  hooks: Required<Pick<DeliveryEngineHooks, 'onClaim'>>;
  /** Waits until the engine has completed `n` rounds since it started; resolves to the rows they took. */
  claimedInFirst(n: number, timeoutMs?: number): Promise<number>;
}

/** Rounds of an engine started with `hooks`. */
export function claimRounds(): HookedClaimRounds {
  const tally: ClaimTally = { rounds: 0, rows: 0 };
  const read = () => ({ ...tally });
  return {
    hooks: {
      onClaim: (claimed) => {
        tally.rounds++;
        tally.rows += claimed;
      },
    },
    claimedInNext: (n, timeoutMs) => roundsAfter(read, n, timeoutMs),
    claimedInFirst: async (n, timeoutMs = 10_000) => {
      await waitFor(() => tally.rounds >= n, { timeoutMs, what: `${n} claim round(s)` });
      return tally.rows;
    },
  };
}

/** Rounds of a Postbox instance's own engine, read from its postbox_claim_batch_size histogram. */
export function metricClaimRounds(metrics: Metrics): ClaimRounds {
  const read = async (): Promise<ClaimTally> => {
    const histogram = metrics.registry.getSingleMetric('postbox_claim_batch_size') as Histogram | undefined;
    if (!histogram) throw new Error('postbox_claim_batch_size is not registered');
    const { values } = await histogram.get();
    const value = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
    return { rounds: value('postbox_claim_batch_size_count'), rows: value('postbox_claim_batch_size_sum') };
  };
  return { claimedInNext: (n, timeoutMs) => roundsAfter(read, n, timeoutMs) };
}

async function roundsAfter(
  read: () => ClaimTally | Promise<ClaimTally>,
  n: number,
  timeoutMs = 10_000,
): Promise<number> {
  const start = await read();
  // A round may be under way now and may or may not see what the test just did: skip past it.
  const from = await waitFor(
    async () => {
      const t = await read();
      return t.rounds > start.rounds ? t : undefined;
    },
    { timeoutMs, what: 'the claim round under way to complete' },
  );
  const to = await waitFor(
    async () => {
      const t = await read();
      return t.rounds >= from.rounds + n ? t : undefined;
    },
    { timeoutMs, what: `${n} more claim round(s)` },
  );
  // `to` may include rounds beyond the n: they began later still, so they count as well.
  return to.rows - from.rows;
}
