/**
 * The layout of a queue's ring (`_ring.ts`), defined once: its control
 * words, each a named Int32 index, and its records.
 *
 * @module
 */

// Control words (Int32 indices), 16 to a 64-byte cache line. The words
// each side writes for every item share no line with the words the other
// side watches: TAIL and HEAD, which the other side reads (and a waiting
// consumer spins on), have lines of their own.
export const MAGIC = 0;
export const CAPACITY = 1;
export const ID_A = 2;
export const ID_B = 3;
export const MAXSIZE = 4;
export const KIND = 5;
// Producer side.
export const WLOCK = 16;
export const WSEQ = 17;
export const WSTREAM = 18;
export const WLOCK_WAITERS = 19;
export const DATA_WAITERS = 20;
export const RESERVED = 21;
export const TAIL = 32;
// Consumer side.
export const RLOCK = 48;
export const RSEQ = 49;
export const RSTREAM = 50;
export const RLOCK_WAITERS = 51;
export const SPACE_WAITERS = 52;
export const SPINNER = 53;
export const HEAD = 64;
// JoinableQueue.
export const UNFINISHED = 80;
export const JOIN_WAITERS = 81;
export const CTL_BYTES = 384;
/** Internal, for tests that play a process dying at a given point. */
export const WORDS = {
  WLOCK,
  TAIL,
  WSTREAM,
  RLOCK,
  HEAD,
  RSEQ,
  RSTREAM,
  RESERVED,
} as const;
export const MAGIC_VALUE = 0x51554555;

// Record kinds.
export const WHOLE = 0;
export const FIRST = 1;
export const MIDDLE = 2;
export const LAST = 3;
/** A record's header: `[kind << KIND_SHIFT | payload length][item sequence number]`. */
export const HDR = 8;
/** Where a record's kind sits in its header's first word. */
export const KIND_SHIFT = 30;
/** A FIRST record's payload starts with the item's total length, as a u64. */
export const TOTAL_BYTES = 8;
/** The payload length's bits of a header's first word. */
export const LEN_MASK = (1 << KIND_SHIFT) - 1;

/** Smallest and largest ring, in bytes. */
export const MIN_CAPACITY = 4096;
export const MAX_CAPACITY = 1 << 30;
/** The ring of a queue made without `capacityBytes`. */
export const DEFAULT_CAPACITY = 1 << 20;

/** Records are 8-byte aligned. */
export const align8 = (n: number) => (n + 7) & ~7;

/** Rounds a capacity up to a power of two within the limits. */
export function ringCapacity(bytes: number): number {
  let c = MIN_CAPACITY;
  while (c < bytes && c < MAX_CAPACITY) c *= 2;
  return c;
}
