/**
 * WAL written by the server between two marks: the bytes every unit of work adds to the log, which is
 * what the disk must absorb (and replicas receive) whatever the tables look like afterwards.
 */
import pg from 'pg';

/** The server's current WAL insert position, as a byte offset. */
export async function walPosition(url: string): Promise<bigint> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ b: string }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS b`,
    );
    return BigInt(String(rows[0]!.b).split('.')[0]!);
  } finally {
    await client.end();
  }
}

/** WAL bytes since `mark` (a walPosition), as a number. */
export async function walSince(url: string, mark: bigint): Promise<number> {
  return Number((await walPosition(url)) - mark);
}
