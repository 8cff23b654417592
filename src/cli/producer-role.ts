/**
 * `npm run db:producer-role -- <name> [--grant-only]`: creates a database role that may call
 * postbox.emit and nothing else, and prints its password once (or, with --grant-only, grants emit to
 * an existing role). Connects with DATABASE_URL as the owner of the Postbox schema.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createProducerRole, grantEmit } from '../queries/producers.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const name = args.find((a) => !a.startsWith('--'));
  const url = process.env.DATABASE_URL;
  if (!name || !url) {
    console.error(
      'usage: DATABASE_URL=postgres://owner@host/db npm run db:producer-role -- <name> [--grant-only]',
    );
    process.exit(2);
  }
  const client = new pg.Client({ connectionString: url, application_name: 'postbox-producer-role' });
  await client.connect();
  try {
    if (args.includes('--grant-only')) {
      await grantEmit(client, name);
      console.log(`granted EXECUTE on postbox.emit to ${name}`);
    } else {
      const password = process.env.PRODUCER_PASSWORD ?? randomBytes(24).toString('base64url');
      await createProducerRole(client, name, password);
      console.log(`created role ${name}; it may call postbox.emit and nothing else`);
      if (process.env.PRODUCER_PASSWORD === undefined) console.log(`password (shown once): ${password}`);
    }
  } finally {
    await client.end();
  }
}

main().catch((err: unknown) => {
  console.error(String((err as Error)?.message ?? err));
  process.exit(1);
});
