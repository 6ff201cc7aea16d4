// Targets the stress tests' children run: exported, since a child finds its
// target by exported name.
import {
  type Barrier,
  BrokenBarrierError,
  type Condition,
  type Lock,
  type Queue,
  type Semaphore,
} from "../../mod.ts";

const T = 30_000;

function hang(): Promise<never> {
  return new Promise(() => setInterval(() => {}, 1000));
}

/** Item `i` of producer `p`: `size` bytes a consumer can check. */
function item(p: number, i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  b[0] = p;
  new DataView(b.buffer).setUint32(4, i);
  for (let k = 8; k < size; k += 4096) b[k] = (i + k + p) & 255;
  return b;
}

/** Puts `n` items of `size` bytes with `putSync` (each bounded by `timeoutMs`). */
export function putSyncItems(
  q: Queue<Uint8Array>,
  p: number,
  n: number,
  size: number,
  timeoutMs: number,
) {
  for (let i = 0; i < n; i++) {
    q.putSync(item(p, i, size), { timeout: timeoutMs });
  }
}

/**
 * Gets items until `null` (each get bounded by `timeoutMs`), checks them, and
 * puts on `out` the `[producer, index]` pairs it got, in order.
 */
export async function getItems(
  q: Queue<Uint8Array | null>,
  out: Queue<Int32Array>,
  timeoutMs: number,
) {
  const got: number[] = [];
  for (;;) {
    const b = await q.get({ timeout: timeoutMs });
    if (b === null) break;
    const p = b[0], i = new DataView(b.buffer, b.byteOffset).getUint32(4);
    for (let k = 8; k < b.length; k += 4096) {
      if (b[k] !== ((i + k + p) & 255)) {
        throw new Error(`item ${p}/${i} corrupt`);
      }
    }
    got.push(p, i);
  }
  await out.put(Int32Array.from(got));
}

/** Takes a unit of `sem`, counts itself in `held[0]`, then waits to be terminated. */
export async function holdUnit(sem: Semaphore, held: Int32Array) {
  if (!(await sem.acquire({ timeout: T }))) throw new Error("no unit");
  Atomics.add(held, 0, 1);
  await hang();
}

/** Adds 1 to `count[0]` `n` times under `lock` (blocking waits). */
export function lockLoop(lock: Lock, count: Int32Array, n: number) {
  for (let i = 0; i < n; i++) {
    using _ = lock.holdSync({ timeout: T });
    count[0]++;
  }
}

/** Waits on `cond` over and over; counts each wake-up in `woken[0]`. */
export async function condWaiter(cond: Condition, waiting: Int32Array) {
  for (;;) {
    using _ = await cond.hold({ timeout: T });
    Atomics.add(waiting, 0, 1);
    const notified = await cond.wait(T);
    Atomics.sub(waiting, 0, 1);
    if (notified) Atomics.add(waiting, 1, 1);
  }
}

/** Waits on `barrier` once; `out[slot]` is its index, or -1 when it was broken. */
export async function partyOnce(
  barrier: Barrier,
  out: Int32Array,
  slot: number,
) {
  try {
    Atomics.store(out, slot, await barrier.wait(T));
  } catch (e) {
    if (!(e instanceof BrokenBarrierError)) throw e;
    Atomics.store(out, slot, -1);
  }
}
