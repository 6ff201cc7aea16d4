/**
 * The process table: one SharedArrayBuffer, shared by every process of the
 * program, that says which processes are alive. Anything that waits on
 * another process (a lock's owner, a pipe's peer, a queue's reader) asks it,
 * so that a process that died never leaves the others blocked.
 *
 * Each process has an `ident` (its `pid` for children; the main program is
 * ident 0 and never dies as far as the others can tell). Slot
 * `ident & MASK` holds `ident` while the process is alive, 0 once it ended.
 * A parent marks a child dead when it sees it end; a process also marks
 * itself on a clean exit. Since a worker's own workers die with it, marking a
 * process dead also marks its descendants.
 *
 * @module
 */

const SLOTS = 1 << 16;
const MASK = SLOTS - 1;
/** Word 0: the next ident to hand out. Then SLOTS alive words, SLOTS parent words. */
const ALIVE = 1;
const PARENT = ALIVE + SLOTS;

let table: Int32Array | undefined;
let selfIdent = 0;

function words(): Int32Array {
  if (!table) {
    table = new Int32Array(new SharedArrayBuffer((1 + 2 * SLOTS) * 4));
    table[0] = 1;
  }
  return table;
}

/** The table's buffer, handed to each child at start. */
export function tableBuffer(): SharedArrayBuffer {
  return words().buffer as SharedArrayBuffer;
}

/** In a child: use the parent's table and our own ident. */
export function attachTable(buffer: SharedArrayBuffer, ident: number): void {
  table = new Int32Array(buffer);
  selfIdent = ident;
}

/** This process's ident (0 in the main program). */
export function currentIdent(): number {
  return selfIdent;
}

/** Reserves an ident for a child of this process and marks it alive. */
export function allocateIdent(): number {
  const t = words();
  for (let tries = 0; tries < SLOTS; tries++) {
    let ident = Atomics.add(t, 0, 1);
    if (ident > 0x7ffffff0) {
      Atomics.store(t, 0, 1);
      ident = Atomics.add(t, 0, 1);
    }
    const slot = ident & MASK;
    if (slot === 0) continue;
    if (Atomics.compareExchange(t, ALIVE + slot, 0, ident) === 0) {
      Atomics.store(t, PARENT + slot, selfIdent);
      return ident;
    }
  }
  throw new RangeError(`more than ${SLOTS - 1} processes alive at once`);
}

/** True while the process `ident` has not ended. Ident 0 (main) is always alive. */
export function isIdentAlive(ident: number): boolean {
  if (ident === 0) return true;
  return Atomics.load(words(), ALIVE + (ident & MASK)) === ident;
}

/** Marks `ident` and all its descendants dead, waking whoever waits on them. */
export function markDead(ident: number): void {
  if (ident === 0) return;
  const t = words();
  if (Atomics.compareExchange(t, ALIVE + (ident & MASK), ident, 0) !== ident) {
    return;
  }
  Atomics.notify(t, ALIVE + (ident & MASK));
  for (let slot = 1; slot < SLOTS; slot++) {
    if (Atomics.load(t, PARENT + slot) === ident) {
      const child = Atomics.load(t, ALIVE + slot);
      if (child !== 0) markDead(child);
    }
  }
}

let halt: (() => never) | undefined;

/** In a child: how to stop this process at once (set by the bootstrap). */
export function setHalt(fn: () => never): void {
  halt = fn;
}

/** True when this process is a child that was ended from outside (`terminate()`) but still runs. */
export function isSelfEnded(): boolean {
  return selfIdent !== 0 && !isIdentAlive(selfIdent);
}

/**
 * Stops this process if it was ended from outside (`terminate()`), for code
 * that blocks the thread: Deno only stops a worker when its event loop gets
 * control, so every blocking wait calls this between slices.
 */
export function haltIfEnded(): void {
  if (halt && isSelfEnded()) halt();
}
