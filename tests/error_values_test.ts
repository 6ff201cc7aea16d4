// Error messages show a bad value as it was: a string quoted (with the fix
// when it holds a number), an object by its kind with the right article.
import assert from "node:assert/strict";
import {
  Barrier,
  BoundedSemaphore,
  Condition,
  Pool,
  Process,
  RawArray,
  Semaphore,
  SharedArray,
  Value,
} from "../mod.ts";
import { checkChunksize } from "../lib/pool/_checks.ts";
import { checkTimeout } from "../lib/shm/_wait.ts";
import { show } from "../lib/_show.ts";

const STRING_THREE = /got "3": pass the number 3, not a string/;

Deno.test("error messages: a number passed as a string is shown quoted, with the fix", () => {
  const cases: [string, () => unknown][] = [
    ["chunksize", () => checkChunksize("3")],
    ["Pool processes", () => new Pool({ processes: "3" as unknown as number })],
    [
      "Pool maxtasksperchild",
      () => new Pool({ processes: 1, maxtasksperchild: "3" as never }),
    ],
    ["Semaphore", () => new Semaphore("3" as unknown as number)],
    ["BoundedSemaphore", () => new BoundedSemaphore("3" as unknown as number)],
    ["Barrier", () => new Barrier("3" as unknown as number)],
    ["SharedArray size", () => new SharedArray("d", "3" as unknown as number)],
    ["RawArray size", () => new RawArray("i", "3" as unknown as number)],
    [
      "SharedArray item",
      () => new SharedArray("d", ["3" as unknown as number]),
    ],
    ["Value", () => new Value("d", "3" as unknown as number)],
    ["timeout", () => checkTimeout("3")],
  ];
  for (const [what, f] of cases) {
    assert.throws(
      f,
      (e) => e instanceof Error && STRING_THREE.test(e.message),
      what,
    );
  }
});

Deno.test("error messages: an object is shown by its kind, with the right article", () => {
  assert.equal(show({}), "an Object");
  assert.equal(show(new Map()), "a Map");
  assert.equal(show(Object.create(null)), "an object");
  assert.equal(show([1]), "an array");
  assert.throws(() => checkTimeout({}), /got an Object$/);
  assert.throws(() => checkTimeout(new Map()), /got a Map$/);
  assert.throws(
    () => new Process({ args: "x" as unknown as [] }),
    /args must be an array of arguments, got "x"/,
  );
});

Deno.test("error messages: Condition(lock) and Barrier action show what they got", () => {
  assert.throws(
    () => new Condition(new Semaphore(1) as never),
    /lock must be a Lock or an RLock of this module, got a Semaphore$/,
  );
  assert.throws(
    () => new Barrier(2, { action: "f" as never }),
    /Barrier action must be a function, got "f"$/,
  );
});
