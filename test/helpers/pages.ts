import { expect } from '@jest/globals';
import type { ApiResponse, TestApp } from './app.js';

/**
 * Every page of a list, first to last: follows `next_cursor` from `path` (which carries its own
 * query, e.g. `?limit=2`) until it is null. Each page must answer 200; returns each page's `data`.
 */
export async function allPages(app: TestApp, path: string, key?: string): Promise<any[][]> {
  const pages: any[][] = [];
  let cursor: string | null = null;
  do {
    const res: ApiResponse = await app.request('GET', cursor ? `${path}&cursor=${cursor}` : path, { key });
    expect(res.status).toBe(200);
    pages.push(res.body.data);
    cursor = res.body.next_cursor;
  } while (cursor);
  return pages;
}
