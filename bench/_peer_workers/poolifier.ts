// poolifier-web-worker's worker: the shared task functions, by name.
// deno-lint-ignore no-import-prefix -- pinned for this bench only
import { ThreadWorker } from "npm:poolifier-web-worker@0.5.15";
import { fib, floaty, square, total } from "../_peer_tasks.ts";

export default new ThreadWorker<unknown, unknown>({
  square: (x) => square(x as number),
  fib: (n) => fib(n as number),
  floaty: (x) => floaty(x as number),
  total: (a) => total(a as Float64Array),
});
