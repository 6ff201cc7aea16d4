// The process table (lib/shm/_proctable.ts): idents handed out and marked dead,
// descendants dying with their ancestor across real processes, a full table,
// slot reuse and the ident counter wrapping.
import assert from "node:assert/strict";
import { Process } from "../mod.ts";
import {
  allocateIdent,
  currentIdent,
  isIdentAlive,
  markDead,
} from "../lib/shm/_proctable.ts";
import { waitAsync } from "../lib/shm/_wait.ts";
import { chain } from "./fixtures/machinery_targets.ts";
import { runProgram } from "./_run_task.ts";

const T = 20_000;
const module = new URL("./fixtures/machinery_targets.ts", import.meta.url);
const program = new URL("./fixtures/proctable_program.ts", import.meta.url);

Deno.test("process table: an allocated ident is alive until marked dead; the main program's never dies", () => {
  assert.equal(currentIdent(), 0);
  const a = allocateIdent();
  const b = allocateIdent();
  assert.notEqual(a, b);
  assert.ok(a > 0 && b > 0);
  assert.equal(isIdentAlive(a), true);
  markDead(a);
  assert.equal(isIdentAlive(a), false);
  assert.equal(isIdentAlive(b), true, "its neighbour lives on");
  markDead(a);
  assert.equal(isIdentAlive(a), false, "marking twice is harmless");
  markDead(0);
  assert.equal(isIdentAlive(0), true);
  markDead(b);
});

Deno.test("process table: a process terminated marks its descendants dead with it, not its siblings", async () => {
  // ids[0..2]: a chain A -> B -> C; ids[3]: S, a sibling of A.
  const ids = new Int32Array(new SharedArrayBuffer(16));
  const a = new Process({ module, target: chain, args: [ids.buffer, 0, 2] });
  const s = new Process({ module, target: chain, args: [ids.buffer, 3, 3] });
  await a.start();
  await s.start();
  try {
    for (let level = 0; level < 4; level++) {
      const r = await waitAsync(ids, level, 0, T);
      assert.notEqual(r, "timed-out", `level ${level} never started`);
    }
    const [ia, ib, ic, is] = Array.from(ids);
    assert.equal(ia, a.pid);
    assert.equal(is, s.pid);
    for (const id of [ia, ib, ic, is]) assert.equal(isIdentAlive(id), true);
    a.terminate();
    await a.join(T);
    // Nobody here saw B or C end (their Process objects were in A, gone
    // with it): only the table's walk from A can mark them.
    assert.equal(isIdentAlive(ia), false, "A");
    assert.equal(isIdentAlive(ib), false, "B, A's child");
    assert.equal(isIdentAlive(ic), false, "C, A's grandchild");
    assert.equal(isIdentAlive(is), true, "S, A's sibling");
  } finally {
    a.terminate();
    s.terminate();
    await a.join(T);
    await s.join(T);
  }
  assert.equal(isIdentAlive(s.pid!), false);
});

Deno.test("process table: a full table is a RangeError, a dead process's slot is handed out again", async () => {
  const r = await runProgram(program, [], ["full"]);
  assert.equal(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout);
  assert.equal(got.count, 65535, "every slot but 0 (the main program's)");
  assert.equal(got.distinct, 65535);
  assert.equal(got.error, "more than 65535 processes alive at once");
  assert.equal(got.reused, true);
  assert.equal(got.freedAlive, false, "the new ident is not the dead one");
});

Deno.test("process table: idents skip slot 0 and wrap past 2^31 - 16 to small ones", async () => {
  const r = await runProgram(program, [], ["wrap"]);
  assert.equal(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout);
  assert.deepEqual(got.aroundSlot0, [0xffff, 0x10001]);
  // Ident 1 would be next, but its slot is 0x10001's, still alive.
  assert.deepEqual(got.aroundTop, [0x7ffffff0, 2]);
});
