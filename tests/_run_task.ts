// Runs programs and examples as a user would, for the tests of their output.
import assert from "node:assert/strict";

/** Bound of one run. */
export const RUN_TIMEOUT_MS = 60_000;

/** What a finished run printed. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `deno <args>` at the repository root (or in `cwd`), bounded by
 * RUN_TIMEOUT_MS, with `env` added to the environment.
 */
export async function runDeno(
  args: string[],
  cwd: string | URL = new URL("..", import.meta.url),
  env?: Record<string, string>,
): Promise<Output> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/**
 * Runs the program `file` (a URL, e.g. `new URL("./fixtures/x.ts",
 * import.meta.url)`) with `deno run -A [flags]`, then its `args`.
 */
export function runProgram(
  file: URL,
  flags: string[] = [],
  args: string[] = [],
): Promise<Output> {
  return runDeno(["run", "-A", ...flags, file.pathname, ...args]);
}

/**
 * Runs `deno task <name> [args]`; asserts it exits 0 without writing to
 * stderr, and returns its stdout.
 */
export async function runTask(
  name: string,
  ...args: string[]
): Promise<string> {
  const r = await runDeno(["task", "-q", name, ...args]);
  assert.equal(
    r.code,
    0,
    `${name} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`,
  );
  assert.equal(r.stderr, "", `${name} wrote to stderr:\n${r.stderr}`);
  return r.stdout;
}
