// Runs the examples as a user would, for the tests of their output.
import assert from "node:assert/strict";

/** Bound of one example run. */
export const TASK_TIMEOUT_MS = 60_000;

/**
 * Runs `deno task <name> [args]` at the repository root, bounded by
 * TASK_TIMEOUT_MS; asserts it exits 0 without writing to stderr, and returns
 * its stdout.
 */
export async function runTask(
  name: string,
  ...args: string[]
): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", name, ...args],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TASK_TIMEOUT_MS),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(
    out.code,
    0,
    `${name} failed (exit ${out.code}):\n${stdout}${stderr}`,
  );
  assert.equal(stderr, "", `${name} wrote to stderr:\n${stderr}`);
  return stdout;
}
