/** Percentiles of latency samples, as the benches print them. */

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** p50/p95/p99/max of `samples`, rounded to 0.01. */
export function summary(samples: readonly number[]) {
  const sorted = Float64Array.from(samples).sort();
  return {
    p50: round2(percentile(sorted, 50)),
    p95: round2(percentile(sorted, 95)),
    p99: round2(percentile(sorted, 99)),
    max: round2(sorted[sorted.length - 1] ?? NaN),
  };
}

/** Reads a numeric BENCH_* setting. */
export const envNumber = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
