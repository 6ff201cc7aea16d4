// Targets the stress tests' children run: exported, since a child finds its
// target by exported name.
import type { Queue } from "../../mod.ts";

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
