import { defineConfig } from 'drizzle-kit';

// drizzle-kit generates db/migrations from db/schema.ts; hand-written SQL (comments, triggers,
// partial indexes drizzle cannot express) goes into custom migrations: `npm run db:generate -- --custom`.
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema.ts',
  out: './db/migrations',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
});
