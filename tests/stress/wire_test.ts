// The wire under hostile input, at sizes too long for every CI run
// (`deno task stress`; MP_STRESS=1 makes them bigger still): the decoder and
// frame reader fuzzed, many hostile clients in front of one TCP manager.
import assert from "node:assert/strict";
import { runProgram } from "../_run_task.ts";

const BIG = Deno.env.get("MP_STRESS") !== undefined;

Deno.test("stress: fuzz the decoder and frame reader (seeded)", async () => {
  // 100,000 inputs a seed is the review's size.
  for (let seed = 1; seed <= (BIG ? 3 : 1); seed++) {
    const out = await runProgram(
      new URL("../fixtures/fuzz_wire.ts", import.meta.url),
      [],
      [String(BIG ? 100_000 : 30_000), String(seed)],
    );
    assert.match(out.stdout, /^ok \d+ \d+ \d+\n$/, out.stdout + out.stderr);
  }
});

Deno.test("stress: hostile TCP clients (endless and random frames) never stop the server for an honest one", async () => {
  const out = await runProgram(
    new URL("../fixtures/hostile_tcp.ts", import.meta.url),
    [],
    [String(BIG ? 200 : 20)],
  );
  assert.equal(out.stdout.trim(), "served 10", out.stderr);
});
