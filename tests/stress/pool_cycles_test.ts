// Pools created and ended in a loop do not grow the program (`deno task
// stress`; MP_STRESS=1 runs more cycles). Their rings were 1 MiB
// SharedArrayBuffers from the C allocator's heap, which kept the memory:
// ~1 MB a cycle (90 -> 140 -> 191 MB at 100/200/300 cycles).
import assert from "node:assert/strict";

const CYCLES = Deno.env.get("MP_STRESS") !== undefined ? 600 : 300;

for (const how of ["terminate", "close"]) {
  Deno.test(`stress: ${CYCLES} pools created, used once and ended by ${how}() keep the RSS level`, async () => {
    // Longer than runProgram's bound: a cycle takes ~0.3 s on a busy machine.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../fixtures/pool_cycles.ts", import.meta.url).pathname,
        String(CYCLES),
        how,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(CYCLES * 2_000),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const m = stdout.match(/^rss (\d+) (\d+)$/m);
    assert.ok(m, stdout + new TextDecoder().decode(out.stderr));
    const growth = Number(m[2]) - Number(m[1]);
    // Generous: noise and the allocator's own slack, not a MB a cycle.
    assert.ok(growth < 25, `RSS grew ${growth} MB over ${CYCLES} cycles`);
  });
}
