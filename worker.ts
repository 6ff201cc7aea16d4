/**
 * A worker program of a `RedisPool` (`@mp/multiprocessing/redis`): it runs
 * the pool's tasks on a local `Pool` of `--processes` children.
 *
 * ```sh
 * deno run -A worker.ts --url redis://127.0.0.1:6379 --pool NAME \
 *   --allow-module file:///srv/app/ [--processes N] [--visibility-timeout MS] [--name NAME]
 * ```
 *
 * It imports only modules under an `--allow-module` prefix (required,
 * repeatable): a task naming any other module fails with
 * `ModuleNotAllowedError`. SIGINT or SIGTERM: it stops taking tasks and
 * ends after the ones in hand.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cpuCount } from "./lib/process.ts";
import { RedisWorker } from "./lib/redis/_worker.ts";

const USAGE =
  "usage: deno run -A worker.ts --url redis://HOST:PORT --pool NAME --allow-module PREFIX " +
  "[--allow-module PREFIX...] [--processes N] [--visibility-timeout MS] [--name NAME] [--connect-timeout MS]";

function fail(message: string): never {
  console.error(`worker: ${message}\n${USAGE}`);
  Deno.exit(2);
}

function positive(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    fail(`${flag} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return n;
}

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        url: { type: "string" },
        pool: { type: "string" },
        processes: { type: "string" },
        "allow-module": { type: "string", multiple: true },
        "visibility-timeout": { type: "string" },
        "connect-timeout": { type: "string" },
        name: { type: "string" },
      },
    }));
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  if (!values.url) fail("--url is required (the pool's Redis)");
  if (!values.pool) fail("--pool is required (the RedisPool's name)");
  const allow = values["allow-module"] ?? [];
  if (allow.length === 0) {
    fail(
      "--allow-module is required: the URL prefix of the modules this worker may import " +
        "(e.g. --allow-module file:///srv/app/ or https://example.com/tasks/)",
    );
  }
  const worker = new RedisWorker({
    url: values.url,
    pool: values.pool,
    processes: positive(values.processes, "--processes", cpuCount()),
    allowModules: allow,
    visibilityTimeout: positive(
      values["visibility-timeout"],
      "--visibility-timeout",
      30_000,
    ),
    connectTimeout: positive(
      values["connect-timeout"],
      "--connect-timeout",
      10_000,
    ),
    name: values.name,
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      worker.stop().then(() => Deno.exit(0));
    });
  }
  try {
    await worker.start();
  } catch (e) {
    console.error(
      `worker: ${e instanceof Error ? `${e.name}: ${e.message}` : e}`,
    );
    Deno.exit(1);
  }
}
