// One child process for the length of a test body, always ended after.
import assert from "node:assert/strict";
import { Process } from "../mod.ts";

const T = 20_000;
const machinery = new URL("./fixtures/machinery_targets.ts", import.meta.url);

/**
 * Starts `target(...args)` (exported by tests/fixtures/machinery_targets.ts
 * unless `module` says otherwise) in a child, runs `body` with it, then ends
 * it: terminated if `body` left it running, joined either way (bounded).
 */
export async function withChild<A extends unknown[]>(
  target: (...args: A) => unknown,
  args: A,
  body: (p: Process) => Promise<void> | void,
  module: URL = machinery,
): Promise<void> {
  const p = new Process({ module, target, args });
  await p.start();
  try {
    await body(p);
  } finally {
    p.terminate();
    await p.join(T);
  }
}

/** Waits (bounded) for `p` to end by itself, and asserts it ended well. */
export async function endsWell(p: Process): Promise<void> {
  await p.join(T);
  assert.equal(p.exitCode, 0, `${p.name} ended with ${p.exitCode}`);
}
