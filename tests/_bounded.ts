// Bounds every wait of a test: a hang becomes a failure that says what hung.

/** Default bound of one wait in a test (ms). */
export const BOUND_MS = 30_000;

/** Resolves as `p` does, or rejects once `ms` passed without it settling. */
export async function bounded<T>(
  p: Promise<T>,
  ms: number = BOUND_MS,
  what = "operation",
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) =>
        timer = setTimeout(
          () => reject(new Error(`${what} did not settle in ${ms} ms`)),
          ms,
        )
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
