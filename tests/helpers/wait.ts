/**
 * Waiting in tests: poll for the condition the test needs (`eventually`), never sleep for a guess of
 * how long it takes. The one exception is a wait whose length is the point (`letTimePass`).
 */

const POLL_INTERVAL_MS = 20;

/**
 * Resolves as soon as `check` holds, polling every 20 ms; fails with `what` after `timeoutMs`. A
 * check that throws counts as not holding yet (so it may read something not there yet).
 */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      if (await check()) return;
      lastError = null;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last check threw: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/**
 * A wait whose length is what the test checks: that nothing arrives within it, that a deadline or
 * a timeout passes, that events happen while something is away. `why` says which, at the call.
 */
export function letTimePass(ms: number, why: string): Promise<void> {
  void why;
  return new Promise((resolve) => setTimeout(resolve, ms));
}
