/** Ids are UUIDv7: time-ordered, so ORDER BY id is creation order and inserts stay index-friendly. */
import { v7 } from 'uuid';

export function newId(): string {
  return v7();
}
