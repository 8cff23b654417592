/**
 * Where PostgreSQL's time goes, per statement (pg_stat_statements): BENCH_PG_STATEMENTS=1 loads the
 * extension into the embedded server, and the bench prints the top statements of the measured window
 * (calls, total and mean execution time, rows). For diagnosis: the extension costs a little itself.
 */
import pg from 'pg';

export const statementsWanted = process.env.BENCH_PG_STATEMENTS === '1';

/** Server settings that load the extension (embedded server only). */
export const statementSettings = {
  shared_preload_libraries: 'pg_stat_statements',
  'pg_stat_statements.track': 'all',
  // Planning counted apart from execution: a prepared statement planned again (custom plans, or a
  // generic plan invalidated by ANALYZE) shows up in plans and plan_ms.
  'pg_stat_statements.track_planning': 'on',
};

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function resetStatements(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await c.query('SELECT pg_stat_statements_reset()');
  });
}

/** The `n` statements with the most execution time since the reset, `per` units of work given. */
export async function topStatements(
  url: string,
  per: number,
  n = Number(process.env.BENCH_PG_STATEMENTS_TOP ?? 8),
) {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{
      query: string;
      calls: string;
      total: number;
      mean: number;
      rows: string;
      plans: string;
      plan: number;
    }>(
      `SELECT regexp_replace(left(query, 90), '\\s+', ' ', 'g') AS query, calls, total_exec_time AS total,
              mean_exec_time AS mean, rows, plans, total_plan_time AS plan
         FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'
        ORDER BY total_exec_time DESC LIMIT $1`,
      [n],
    );
    return rows.map((r) => ({
      query: r.query,
      calls: Number(r.calls),
      calls_per_unit: Math.round((1000 * Number(r.calls)) / per) / 1000,
      total_ms: Math.round(r.total),
      us_per_unit: Math.round((1000 * r.total) / per),
      mean_ms: Math.round(r.mean * 1000) / 1000,
      rows_per_call: Math.round(Number(r.rows) / Number(r.calls)),
      plans: Number(r.plans),
      plan_us_per_unit: Math.round((1000 * r.plan) / per),
    }));
  });
}
