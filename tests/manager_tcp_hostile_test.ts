// Hostile TCP clients: bytes from one client never stop the server for the
// others, failed handshakes slow their address down, a frame that stops
// arriving is dropped, short keys are refused.
import assert from "node:assert/strict";
import { runProgram } from "./_run_task.ts";

const HOSTILE = new URL("./fixtures/hostile_tcp.ts", import.meta.url);

Deno.test("one frame that is not an encoding (0x0a, then 65,535 0x80 bytes) closes that client only; the server goes on", async () => {
  // In its own program: before the fix the server spun for good, and a
  // spinning server cannot be stopped from inside its program.
  const out = await runProgram(HOSTILE, [], ["1"]);
  assert.equal(out.stdout.trim(), "served 10", out.stderr);
  assert.equal(out.code, 0, out.stderr);
});
