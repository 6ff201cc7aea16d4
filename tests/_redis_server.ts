// The Redis helpers of the tests: a server per test, and worker programs
// allowed the test fixtures.
import {
  startWorker as start,
  type WorkerProgram,
} from "../examples/_redis_server.ts";
export { freePort, startRedis } from "../examples/_redis_server.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).href;

/** Starts worker.ts for `pool`, allowed the fixtures unless `allow` says otherwise. */
export function startWorker(
  url: string,
  pool: string,
  options: {
    processes?: number;
    visibilityTimeout?: number;
    allow?: string;
    name?: string;
  } = {},
): Promise<WorkerProgram> {
  return start(url, pool, { ...options, allow: options.allow ?? FIXTURES });
}
