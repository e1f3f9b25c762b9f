/**
 * Waiting in tests without guessing a sleep: poll a condition until it holds, bounded in time,
 * and fail naming what never happened. A test that sleeps "long enough" is slow when the
 * machine is idle and flaky when it is loaded; this returns as soon as the condition holds.
 */

export interface WaitForOptions {
  /** What is being waited for, for the error message. */
  what?: string;
  /** Longest wait (default 15 s). */
  timeoutMs?: number;
  /** Pause between checks (default 50 ms). */
  intervalMs?: number;
  /** Stop waiting early (e.g. the process died); return a reason to fail with. */
  giveUp?: () => string | undefined;
}

/**
 * Polls `check` until it returns (or resolves to) true; throws when `timeoutMs` is up. A
 * check that throws counts as "not yet", and its last error is named if time runs out.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  opts: WaitForOptions = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const intervalMs = opts.intervalMs ?? 50;
  const what = opts.what ?? "a condition";
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const reason = opts.giveUp?.();
    if (reason !== undefined) throw new Error(`gave up waiting for ${what}: ${reason}`);
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) =>
      setTimeout(r, Math.min(intervalMs, Math.max(1, deadline - Date.now()))),
    );
  }
  const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}
