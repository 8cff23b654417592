/**
 * Shutdown's word to one attempt in flight. The claimer makes one per claimed delivery and aborts all
 * of them when the grace runs out (abortAll); the sender listens through `onAbort` while its request is
 * out. A plain object rather than an AbortController per attempt: the controller, its EventTarget and
 * one listener added and removed cost a few µs of CPU per delivery and leave garbage behind, for a
 * signal that fires at most once per process lifetime.
 */
export interface AttemptAbort {
  /** Set once, by abortAttempt. */
  aborted: boolean;
  /** Called once when the attempt is aborted; the attempt sets it while it waits, and clears it after. */
  onAbort: (() => void) | undefined;
}

export function attemptAbort(): AttemptAbort {
  return { aborted: false, onAbort: undefined };
}

export function abortAttempt(a: AttemptAbort): void {
  if (a.aborted) return;
  a.aborted = true;
  const onAbort = a.onAbort;
  a.onAbort = undefined;
  onAbort?.();
}
