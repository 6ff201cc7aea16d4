/**
 * Runs every benchmark script in bench/ (`*_bench.ts`), one after the other
 * so they do not disturb each other; each prints its numbers beside its
 * baselines (Python's multiprocessing via python3, raw workers, ...) and the
 * ratios. Extra arguments (e.g. `--quick`) are passed to each script.
 *
 * Run: `deno task bench` (needs `python3`).
 *
 * @module
 */

if (import.meta.main) {
  const dir = new URL(".", import.meta.url);
  const only = Deno.args.filter((a) => !a.startsWith("-"));
  const flags = Deno.args.filter((a) => a.startsWith("-"));
  const scripts = [...Deno.readDirSync(dir)]
    .map((e) => e.name)
    .filter((n) => n.endsWith("_bench.ts"))
    .filter((n) => only.length === 0 || only.some((o) => n.startsWith(o)))
    .sort();
  let failed = 0;
  for (const name of scripts) {
    console.log(`\n=== ${name}`);
    const status = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", new URL(name, dir).pathname, ...flags],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (!status.success) {
      failed++;
      console.log(`${name} failed (exit ${status.code})`);
    }
  }
  if (failed) Deno.exit(1);
}
