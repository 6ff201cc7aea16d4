import assert from "node:assert/strict";
import {
  DESCEND,
  pathString,
  pathTo,
  rewrite,
  some,
  type Visit,
} from "../lib/_walk.ts";

class Marked {
  constructor(readonly n: number) {}
}

/** Replaces each Marked by its number; walks into everything else. */
const unmark: Visit = (x) => x instanceof Marked ? x.n : DESCEND;

Deno.test("walk: some finds a part in arrays, objects, Map keys and values, Set members; a cycle or a deep value ends", () => {
  const isMarked = (x: object) => x instanceof Marked || DESCEND;
  assert.equal(some([1, { a: [2] }], isMarked), false);
  assert.equal(some([1, { a: [new Marked(1)] }], isMarked), true);
  assert.equal(some(new Map([[new Marked(1), 1]]), isMarked), true);
  assert.equal(some(new Map([[1, new Marked(1)]]), isMarked), true);
  assert.equal(some(new Set([new Marked(1)]), isMarked), true);
  const cyclic: unknown[] = [1];
  cyclic.push(cyclic);
  assert.equal(some(cyclic, isMarked), false);
  cyclic.push(new Marked(2));
  assert.equal(some(cyclic, isMarked), true);
  // Deeper than the quick look goes: found by the walk that keeps a set.
  let deep: unknown = new Marked(3);
  for (let i = 0; i < 200; i++) deep = [deep];
  assert.equal(some(deep, isMarked), true);
});

Deno.test("walk: rewrite in place keeps containers, copy copies each once (cycles and sharing kept), onWrite copies only what changed", () => {
  const shared = { m: new Marked(7) };
  const v: Record<string, unknown> = { a: shared, b: shared, s: new Set([1]) };
  v.self = v;
  const copy = rewrite(v, unmark, "copy") as Record<string, unknown>;
  assert.notEqual(copy, v);
  assert.equal(copy.self, copy);
  assert.equal(copy.a, copy.b);
  assert.deepEqual(copy.a, { m: 7 });
  assert.equal(shared.m instanceof Marked, true); // the original is untouched

  const untouched = { x: [1, 2], s: new Set(["a"]) };
  assert.equal(rewrite(untouched, unmark, "onWrite"), untouched);
  const changed = { keep: [1], m: new Marked(1) };
  const out = rewrite(changed, unmark, "onWrite") as typeof changed;
  assert.notEqual(out, changed);
  assert.equal(out.keep, changed.keep); // unchanged parts are not copied
  assert.equal(out.m, 1);

  const m = new Map<unknown, unknown>([[new Marked(1), new Marked(2)]]);
  const inPlace = rewrite([m], unmark, "inPlace") as unknown[];
  assert.equal(inPlace[0], m);
  assert.deepEqual([...m], [[1, 2]]);
});

Deno.test("walk: pathTo and pathString name where a part sits, in one syntax", () => {
  const bad = () => 1;
  const probe = (v: unknown) => v === bad ? "function" : DESCEND;
  const find = (root: unknown) => {
    const found = pathTo(root, probe);
    return found && pathString("args", found.path);
  };
  assert.equal(find([1, { socket: bad }]), "args[1].socket");
  assert.equal(find([{ "odd key": bad }]), 'args[0]["odd key"]');
  assert.equal(find([new Map([["k", bad]])]), "args[0].get(k)");
  assert.equal(find([new Map([[bad, 1]])]), "args[0].<key>");
  assert.equal(find([new Set([1, bad])]), "args[0].<item 1>");
  assert.equal(find([new Error("x", { cause: bad })]), "args[0].cause");
  assert.equal(find([1, 2]), undefined);
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  assert.equal(find(cyclic), undefined);
});
