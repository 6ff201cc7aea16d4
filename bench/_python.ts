/**
 * Runs a Python baseline of a benchmark: `python3 bench/python/<script>`,
 * which prints one JSON object of results on stdout.
 *
 * @module
 */

/** Runs `bench/python/<script> [args]` and returns the JSON it printed. */
export async function runPython<T>(
  script: string,
  args: string[] = [],
): Promise<T> {
  const out = await new Deno.Command("python3", {
    args: [new URL(`./python/${script}`, import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) {
    throw new Error(`python3 bench/python/${script} failed (exit ${out.code})`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}
