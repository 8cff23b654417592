/**
 * A value read from PostgreSQL for /metrics: read at most once per `ttlMs` however many gauges (or
 * scrapers) ask, and never holding a scrape longer than `maxWaitMs`. A slow or absent database makes
 * /metrics serve the last value (and `healthy` false), never hang or fail.
 */
export interface ScrapeCacheOptions<T> {
  /** Reads the value; a rejection keeps the last value and makes `healthy` false. */
  read: () => Promise<T>;
  /** Reuse a reading this long. */
  ttlMs: number;
  /** A scrape waits at most this long for a fresh reading, then serves the last one. */
  maxWaitMs: number;
}

export class ScrapeCache<T> {
  private last: T | undefined;
  private readAt = 0;
  private ok = false;
  private reading: Promise<void> | undefined;

  constructor(private readonly o: ScrapeCacheOptions<T>) {}

  /** Whether the latest read succeeded and is recent (false before the first, and while a read hangs). */
  get healthy(): boolean {
    return this.ok && Date.now() - this.readAt <= this.o.ttlMs + this.o.maxWaitMs;
  }

  /** The latest value (fresh within ttlMs when the database answers in time), or undefined before any. */
  async get(): Promise<T | undefined> {
    if (this.last !== undefined && Date.now() - this.readAt < this.o.ttlMs) return this.last;
    // One read at a time: concurrent gauges and scrapers share it.
    this.reading ??= this.refresh().finally(() => (this.reading = undefined));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.reading, new Promise((r) => (timer = setTimeout(r, this.o.maxWaitMs)))]);
    clearTimeout(timer);
    return this.last;
  }

  private async refresh(): Promise<void> {
    try {
      this.last = await this.o.read();
      this.ok = true;
    } catch {
      // Served stale (or absent) with healthy false; the database's own errors are logged by whatever
      // else uses it.
      this.ok = false;
    }
    // A failure also waits a ttl before the next try (once there is a value to serve meanwhile), so a
    // scrape storm cannot hammer a sick database.
    this.readAt = Date.now();
  }
}
