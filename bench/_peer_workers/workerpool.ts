// workerpool's worker: registers the shared task functions.
// deno-lint-ignore no-import-prefix -- pinned for this bench only
import workerpool from "npm:workerpool@10.0.3";
import { fib, floaty, square, total } from "../_peer_tasks.ts";

workerpool.worker({ square, fib, floaty, total });
