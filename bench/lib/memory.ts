/**
 * Resident memory of a process, sampled from /proc (Linux) while a bench runs: a leak shows as a slope,
 * so the sampler reports the least-squares trend besides the extremes.
 */
import { readFileSync } from 'node:fs';

/** VmRSS of a process in MiB, or NaN once it has exited. */
export function rssMiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Samples a process's RSS every `everyMs` until stopped. */
export class RssSampler {
  private readonly samples: { atS: number; mib: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly started = performance.now();

  constructor(
    private readonly pid: number,
    everyMs = 500,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    const mib = rssMiB(this.pid);
    if (Number.isFinite(mib)) this.samples.push({ atS: (performance.now() - this.started) / 1000, mib });
  }

  /** Stops sampling; first, last, min, max (MiB) and the trend in MiB per minute. */
  stop() {
    clearInterval(this.timer);
    this.sample();
    const s = this.samples;
    const n = s.length;
    const meanT = s.reduce((a, x) => a + x.atS, 0) / n;
    const meanM = s.reduce((a, x) => a + x.mib, 0) / n;
    const cov = s.reduce((a, x) => a + (x.atS - meanT) * (x.mib - meanM), 0);
    const varT = s.reduce((a, x) => a + (x.atS - meanT) ** 2, 0);
    return {
      samples: n,
      first: round1(s[0]?.mib ?? NaN),
      last: round1(s[n - 1]?.mib ?? NaN),
      min: round1(Math.min(...s.map((x) => x.mib))),
      max: round1(Math.max(...s.map((x) => x.mib))),
      slope_mib_per_min: varT > 0 ? round1((60 * cov) / varT) : 0,
    };
  }
}
