/**
 * An open-loop load at a fixed rate: request i is due at start + i / rate, sent then whatever the
 * earlier requests are doing, and its latency counted from when it was due (as wrk2 does).
 *
 * Why not autocannon's `overallRate`: autocannon is closed-loop, and its rate limit lets each
 * connection send its share of a second back to back as soon as the second starts, then idle until the
 * next one. At 300 requests/s over 20 connections that is 20 bursts of 15 at each second's start: the
 * server sees saturation for a few tens of milliseconds and nothing for the rest, and the latencies
 * measured are those of the burst (ingest p50 26 ms at "300/s", measured on this machine, against
 * ~3 ms paced). autocannon stays the tool for saturation runs, which is what it is built for.
 */
import http from 'node:http';

export interface PacedOptions {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Requests per second, spread evenly. */
  rate: number;
  seconds: number;
}

/**
 * Sends `rate` requests/s for `seconds` and resolves once every response is in, calling `onResponse`
 * with each status and its latency in ms from when the request was due.
 */
export async function pacedPost(
  o: PacedOptions,
  onResponse: (status: number, latencyMs: number) => void,
): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const url = new URL(o.url);
  const body = Buffer.from(o.body);
  const headers = { ...o.headers, 'content-length': String(body.length) };
  const total = Math.round(o.rate * o.seconds);
  const started = performance.now();
  let sent = 0;
  let outstanding = 0;
  let failure: Error | undefined;

  await new Promise<void>((resolve) => {
    const settle = () => {
      if (sent >= total && outstanding === 0) resolve();
    };
    const send = (dueAt: number) => {
      outstanding++;
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent },
        (res) => {
          res.resume();
          res.on('end', () => {
            onResponse(res.statusCode ?? 0, performance.now() - dueAt);
            outstanding--;
            settle();
          });
        },
      );
      req.on('error', (err) => {
        failure ??= err;
        outstanding--;
        settle();
      });
      req.end(body);
    };
    // A 1 ms timer: every request that has come due since the last tick goes now, each with its own
    // due time, so a late tick shows up in the latencies instead of thinning the load.
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * o.rate) + 1);
      for (; sent < due; sent++) send(started + (sent / o.rate) * 1000);
      if (sent < total) setTimeout(tick, 1);
      else settle();
    };
    tick();
  });
  agent.destroy();
  if (failure) throw failure;
}
