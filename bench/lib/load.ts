/**
 * Load through Postbox's API: autocannon POSTing one body for a fixed time, against one or several
 * API processes at once (one autocannon instance each, the connections shared out), counting the 202s
 * and their latencies.
 */
import autocannon from 'autocannon';

export interface LoadRun {
  accepted: number;
  rejected: number;
  statuses: Record<string, number>;
  latenciesMs: number[];
  seconds: number;
}

/**
 * POSTs `body` to `path` of every base in `bases` for `seconds`, `connections` in all (split evenly,
 * at least one each), `rate` events/s in all when given. With several `apiKeys` (one per tenant) each
 * connection takes them in turn. Resolves when every instance has finished.
 */
export async function postLoad(
  bases: string[],
  o: { apiKeys: string[]; path: string; body: string; connections: number; seconds: number; rate?: number },
): Promise<LoadRun> {
  const run: LoadRun = { accepted: 0, rejected: 0, statuses: {}, latenciesMs: [], seconds: 0 };
  const started = performance.now();
  await Promise.all(
    bases.map(
      (base) =>
        new Promise<void>((resolve, reject) => {
          const instance = autocannon(
            {
              url: base + o.path,
              method: 'POST',
              connections: Math.max(1, Math.round(o.connections / bases.length)),
              duration: o.seconds,
              ...(o.rate ? { overallRate: o.rate / bases.length } : {}),
              headers: { authorization: `Bearer ${o.apiKeys[0]}`, 'content-type': 'application/json' },
              body: o.body,
              ...(o.apiKeys.length > 1
                ? {
                    requests: o.apiKeys.map((key) => ({
                      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
                    })),
                  }
                : {}),
            },
            (err) => (err ? reject(err) : resolve()),
          );
          instance.on('response', (_c: unknown, status: number, _bytes: number, responseTime: number) => {
            run.statuses[status] = (run.statuses[status] ?? 0) + 1;
            if (status === 202) {
              run.accepted++;
              run.latenciesMs.push(responseTime);
            } else run.rejected++;
          });
        }),
    ),
  );
  run.seconds = (performance.now() - started) / 1000;
  return run;
}
