/**
 * The ring buffer under every queue: one SharedArrayBuffer holding control
 * words and a power-of-two byte ring, shared by every process that holds the
 * queue. Many producers and many consumers: one writer and one reader at a
 * time, each side behind its own lock word in the buffer (so a writer and a
 * reader work at once), held only for the copy of one item.
 *
 * Records (`_ring_layout.ts`), 8-byte aligned, each an 8-byte header then
 * the payload: `[kind << 30 | payload length][item sequence number]`. An
 * item up to a quarter of the ring is one `WHOLE` record, encoded once
 * straight into the ring (`wire/_encode.ts`); a bigger item streams as `FIRST` (which
 * starts with the item's total length), `MIDDLE`..., `LAST`, the writer
 * holding the producer side and the reader the consumer side until it ends.
 *
 * Waiting: on the words that change (`TAIL` for data, `HEAD` for space, the
 * lock words), through `_wait.ts`, in slices, notifying only when a waiter
 * counted itself. A consumer first spins a few microseconds, since an item
 * is usually on its way.
 *
 * Dying: each lock word holds the ident of its holder; a process that finds
 * it held by a dead process (`_proctable.ts`) takes it over. A reader commits
 * (moves `HEAD`) only after a whole record is copied out (or decoded in
 * place), so an item whose reader died is read again by the next one, never
 * twice; the item-read counter is *stored* from the record's sequence
 * number, so re-reading never counts twice. A reader that died in the middle
 * of a streamed item loses that item (its start is gone from the ring): the
 * next reader skips the orphan pieces. A writer that died in the middle of a stream leaves a
 * partial item that readers drop when the next item starts or when they see
 * the writer gone.
 *
 * Producing never blocks on a full ring: what does not fit now is copied to
 * this process's own FIFO and written by its flusher (`_flusher.ts`).
 *
 * @module
 */

import {
  Decoder,
  type Encoder,
  RAW_HEAD,
  type RawPlan,
  rawPlan,
} from "../wire/_codec.ts";
import { currentIdent, isIdentAlive } from "./_proctable.ts";
import { holderGone, takeOver } from "./_owner.ts";
import { ProcessError } from "../errors.ts";
import { sliceUntil, waitAsync, waitSync } from "./_wait.ts";
import { type Block, Spinner } from "./_spin.ts";
import { Fifo } from "../_fifo.ts";
import { Flusher } from "./_flusher.ts";
import * as layout from "./_ring_layout.ts";

// Module-local copies: V8 reads a module's own consts faster than imported
// bindings (imported in the hot paths: a putNowait + getNowait ~10% slower).
const {
  align8,
  CAPACITY,
  CTL_BYTES,
  DATA_WAITERS,
  FIRST,
  HDR,
  HEAD,
  ID_A,
  ID_B,
  KIND,
  KIND_SHIFT,
  LAST,
  LEN_MASK,
  MAGIC,
  MAGIC_VALUE,
  MAXSIZE,
  MIDDLE,
  RESERVED,
  RLOCK,
  RLOCK_WAITERS,
  RSEQ,
  RSTREAM,
  SPACE_WAITERS,
  SPINNER,
  TAIL,
  TOTAL_BYTES,
  WHOLE,
  WLOCK,
  WLOCK_WAITERS,
  WSEQ,
  WSTREAM,
} = layout;

/** How long a consumer spins for data before it sleeps, in ms (longer than a reply's: an item is encoded and copied first). */
const SPIN_MS = 0.05;
/**
 * How long a process found dead must stay dead before its lock is taken
 * over, plus a millisecond per MB of ring: a terminated worker busy in
 * synchronous code finishes the copy it is in (it checks between copies).
 */
const TAKEOVER_GRACE_MS = 10;

/** What a non-blocking step returns when nothing came of it. */
export const NOTHING: unique symbol = Symbol("nothing");

/** Something that copies bytes `[from, to)` of an item into `dst` at `at`. */
interface Source {
  copyTo(dst: Uint8Array, at: number, from: number, to: number): void;
}

/**
 * Bytes of an item this process keeps until the ring has room: the item's
 * byte `i` is `bytes[zero + i]` (a buffer of its own, or the spill buffer).
 */
class Owned implements Source {
  constructor(public bytes: Uint8Array, public zero: number) {}
  copyTo(dst: Uint8Array, at: number, from: number, to: number): void {
    const b = this.bytes, z = this.zero;
    if (to - from <= 32) {
      for (let i = z + from; i < z + to; i++) dst[at++] = b[i];
    } else dst.set(b.subarray(z + from, z + to), at);
  }
}

interface Pending {
  src: Source;
  size: number;
  sent: number;
}

/**
 * A run of `count` small items waiting back to back in the ring's spill
 * buffer: one allocation-free append an item, where a buffer of its own, a
 * Source and a Pending each cost a put ~3x its time while the ring was full.
 */
interface SpillRun {
  count: number;
}

/** The biggest private buffer a ring keeps from one waiting item to the next. */
const KEEP_PRIVATE = 16 << 20;
/** Items up to this big wait in the spill buffer (bigger ones in buffers of their own). */
const SPILL_ITEM = 4096;
/** A spill buffer bigger than this is dropped once empty. */
const SPILL_KEEP = 1 << 20;
/**
 * While items wait, a put tries to write them once this many bytes were put
 * since the last try (each try reads the consumers' side; tiny items then
 * go in batches, big ones at every put).
 */
const FLUSH_BYTES = 1024;

/** A streamed item being received. */
interface Assembly {
  /** Where its bytes go: the encoding, or (with `plan`) the raw bytes alone. */
  buf: Uint8Array;
  /** Bytes of the encoding received so far. */
  pos: number;
  /** Bytes of the encoding in all. */
  total: number;
  /** Set when the item is one typed array or buffer, received straight into its own buffer. */
  plan: RawPlan | undefined;
  /** The stream's id (its sequence number + 1). */
  id: number;
}

/** Items up to this size are copied out before decoding, so the consumer side is held shortly. */
const COPY_OUT = 4096;

/** Assembly buffers up to this size are kept for the next streamed item. */
const KEEP_ASSEMBLY = 16 << 20;

/**
 * Throws when this process was terminated but still runs: a worker busy in
 * synchronous code goes on after `terminate()` until it returns to its event
 * loop, and must not take items (or locks) the others now take over.
 */
function checkNotTerminated(): void {
  const me = currentIdent();
  if (me !== 0 && !isIdentAlive(me)) {
    throw new ProcessError(
      "this process was terminated (terminate() or kill()) while running synchronous code: " +
        "it may not use a queue any more",
    );
  }
}

const rings = new Map<string, WeakRef<ItemRing>>();

/**
 * One process's handle on a shared ring of items (many producers and
 * consumers, items of any size, streamed when big; `pool/_record_ring.ts`'s
 * RecordRing is the one-producer, one-consumer ring of records): the shared
 * words plus this process's own state (its buffered items, a read in progress). There is one
 * per ring per process, so every `Queue` object of one queue in a process
 * shares it.
 */
export class ItemRing {
  readonly sab: SharedArrayBuffer;
  readonly capacity: number;
  readonly ctl: Int32Array;
  readonly #u32: Uint32Array;
  readonly #data: Uint8Array;
  readonly #mask: number;
  readonly #maxWhole: number;
  readonly #minChunk: number;
  /** Pieces of a stream at most this big, so the reader copies one while the writer writes the next. */
  readonly #maxChunk: number;
  readonly #decoder = new Decoder();
  /** This process's spin policy on this ring (it turns itself off while spins do not pay). */
  readonly #spinner = new Spinner(SPIN_MS);
  #scratch = new Uint8Array(0);

  // Producer state of this process.
  #pending = new Fifo<Pending | SpillRun>();
  /** Small waiting items, `[u32 size, pad][bytes, padded to 8]` each, from `#spillR` to `#spillW`. */
  #spill = new Uint8Array(0);
  #spill32 = new Uint32Array(0);
  #spillR = 0;
  #spillW = 0;
  /** The spill buffer's item being written, as a Source for `#write`. */
  readonly #spilled = new Owned(this.#spill, 0);
  #bytesSinceFlush = 0;
  /** A waiting item's buffer, kept for the next one once written out. */
  #kept: Uint8Array | undefined;
  #headSeen = 0;
  /** TAIL as this process's producer side last left it (another producer moved it on if it differs). */
  #tailMine = 0;
  #streaming = false;
  readonly #flusher: Flusher = new Flusher(this);
  // Consumer state of this process.
  #asm: Assembly | null = null;
  #tailSeen = 0;
  /** HEAD as this process's consumer side last left it (another consumer moved it on if it differs). */
  #headMine = 0;

  /** Counts the records this process wrote or read: whether a step did anything. */
  moved = 0;

  // What the last step that returned NOTHING wants to wait for.
  waitWord = 0;
  waitValue = 0;
  waitCounter = 0;

  private constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.ctl = new Int32Array(sab, 0, CTL_BYTES / 4);
    if (this.ctl[MAGIC] !== MAGIC_VALUE) {
      throw new TypeError("not a queue's shared memory");
    }
    this.capacity = this.ctl[CAPACITY];
    this.#u32 = new Uint32Array(sab, CTL_BYTES, this.capacity / 4);
    this.#data = new Uint8Array(sab, CTL_BYTES, this.capacity);
    this.#mask = this.capacity - 1;
    this.#maxWhole = this.capacity / 4 - HDR;
    this.#minChunk = this.capacity / 8;
    this.#maxChunk = this.capacity / 4;
  }

  /**
   * A new ring of `capacity` bytes (a power of two) for a queue of
   * `maxsize` items (0: no limit); `kind` tells the queue classes apart.
   */
  static create(capacity: number, maxsize: number, kind: number): ItemRing {
    const sab = new SharedArrayBuffer(CTL_BYTES + capacity);
    const ctl = new Int32Array(sab, 0, CTL_BYTES / 4);
    ctl[MAGIC] = MAGIC_VALUE;
    ctl[CAPACITY] = capacity;
    ctl[ID_A] = (Math.random() * 2 ** 32) | 0;
    ctl[ID_B] = (Math.random() * 2 ** 32) | 0;
    ctl[MAXSIZE] = maxsize;
    ctl[KIND] = kind;
    return ItemRing.attach(sab);
  }

  /** This process's handle on the ring in `sab` (the same one each time). */
  static attach(sab: SharedArrayBuffer): ItemRing {
    const ctl = new Int32Array(sab, 0, CTL_BYTES / 4);
    const key = `${ctl[ID_A]}:${ctl[ID_B]}`;
    const known = rings.get(key)?.deref();
    if (known) return known;
    const ring = new ItemRing(sab);
    rings.set(key, new WeakRef(ring));
    return ring;
  }

  /** Which queue class made the ring. */
  get kind(): number {
    return this.ctl[KIND];
  }

  /** The queue's `maxsize` (0: no limit). */
  get maxsize(): number {
    return this.ctl[MAXSIZE];
  }

  // ---- counters ----

  /** Items put and not yet got (including items still buffered by producers). */
  qsize(): number {
    const n = (Atomics.load(this.ctl, RESERVED) -
      Atomics.load(this.ctl, RSEQ)) | 0;
    return n > 0 ? n : 0;
  }

  /** True when no item is in the ring and this process has none buffered. */
  empty(): boolean {
    return this.#pending.length === 0 &&
      Atomics.load(this.ctl, HEAD) === Atomics.load(this.ctl, TAIL);
  }

  /**
   * Takes one of `maxsize` slots for an item; false when the queue is full
   * (then `waitWord`... say what to wait for).
   */
  tryReserve(): boolean {
    const ctl = this.ctl;
    const max = ctl[MAXSIZE];
    if (max === 0) {
      Atomics.add(ctl, RESERVED, 1);
      return true;
    }
    for (;;) {
      const head = Atomics.load(ctl, HEAD);
      const r = Atomics.load(ctl, RESERVED);
      if (((r - Atomics.load(ctl, RSEQ)) | 0) >= max) {
        this.waitFor(HEAD, head, SPACE_WAITERS);
        return false;
      }
      if (Atomics.compareExchange(ctl, RESERVED, r, (r + 1) | 0) === r) {
        return true;
      }
    }
  }

  /** Gives back a slot taken by `tryReserve` for an item that was not put. */
  unreserve(): void {
    Atomics.sub(this.ctl, RESERVED, 1);
    this.notify(HEAD, SPACE_WAITERS);
  }

  // ---- waiting ----

  /** Says what the step that returned NOTHING waits for: `word` to leave `value`, counted in `counter`. */
  waitFor(word: number, value: number, counter: number): void {
    this.waitWord = word;
    this.waitValue = value;
    this.waitCounter = counter;
  }

  /** Wakes `count` (default: all) waiters on `word`, only when `counter` says one waits. */
  notify(word: number, counter: number, count?: number): void {
    if (Atomics.load(this.ctl, counter) > 0) {
      Atomics.notify(this.ctl, word, count);
    }
  }

  /**
   * Waits (at most one slice, and not past `deadline`) for what the last
   * step that returned NOTHING asked for. With `spin`, a consumer first
   * spins briefly for data (see `#spin`).
   */
  waitSync(deadline: number, spin = true): void {
    if (
      spin && this.waitWord === TAIL && this.#spin(this.waitValue, deadline)
    ) {
      return;
    }
    this.blockSync(sliceUntil(deadline));
  }

  /**
   * Blocks up to `ms` for what the last step that returned NOTHING asked
   * for, counted as its waiter so that the other side notifies: a
   * {@linkcode Block} for {@linkcode Spinner.spinThenBlock}.
   */
  readonly blockSync: Block = (ms) => {
    const { ctl, waitWord: word, waitValue: value, waitCounter: counter } =
      this;
    Atomics.add(ctl, counter, 1);
    try {
      if (Atomics.load(ctl, word) !== value) return true;
      return waitSync(ctl, word, value, ms) !== "timed-out";
    } finally {
      Atomics.sub(ctl, counter, 1);
    }
  };

  /** The async twin of {@linkcode ItemRing.waitSync}. */
  async waitAsync(deadline: number, spin = true): Promise<void> {
    const { ctl, waitWord: word, waitValue: value, waitCounter: counter } =
      this;
    if (spin && word === TAIL && this.#spin(value, deadline)) return;
    Atomics.add(ctl, counter, 1);
    try {
      if (Atomics.load(ctl, word) !== value) return;
      await waitAsync(ctl, word, value, sliceUntil(deadline));
    } finally {
      Atomics.sub(ctl, counter, 1);
    }
  }

  /**
   * Spins briefly for `TAIL` to move: an item is usually on its way. One
   * consumer at a time: on two cores, more spinners only steal the
   * producers' time.
   */
  #spin(value: number, deadline: number): boolean {
    const ctl = this.ctl;
    const me = currentIdent() + 1;
    const v = Atomics.compareExchange(ctl, SPINNER, 0, me);
    // No grace: a dead spinner guarded no data, only the right to spin.
    if (v !== 0 && !takeOver(ctl, SPINNER, v, me)) {
      return false; // another consumer spins (or one that died did: taken over)
    }
    try {
      return this.#spinner.spin(ctl, TAIL, value, deadline);
    } finally {
      Atomics.store(ctl, SPINNER, 0);
    }
  }

  // ---- locks ----

  /**
   * Takes the lock `word` without waiting long: spins and sleeps briefly
   * while another process holds it for one copy, gives up (false, saying
   * what to wait for) while the holder streams a big item, and takes it over
   * from a process that died.
   */
  #lock(
    word: number,
    streamWord: number,
    counter: number,
    patient = true,
  ): boolean {
    const ctl = this.ctl;
    const me = currentIdent() + 1;
    for (let i = 0;; i++) {
      const v = Atomics.compareExchange(ctl, word, 0, me);
      if (v === 0) return true;
      if (holderGone(v)) {
        // A grace, unlike a Lock's: a holder that ended finishes the copy it is in.
        if (
          takeOver(ctl, word, v, me, TAKEOVER_GRACE_MS + this.capacity / 1e6)
        ) {
          // The dead holder may have been in the middle of a stream.
          Atomics.store(ctl, streamWord, 0);
          return true;
        }
        this.waitFor(word, v, counter);
        return false;
      }
      if (v === me) {
        // Not held by this process's state (checked by the callers): left
        // by a handle of this process that was garbage-collected.
        if (Atomics.compareExchange(ctl, word, v, me) === v) {
          Atomics.store(ctl, streamWord, 0);
          return true;
        }
        continue;
      }
      if (!patient || Atomics.load(ctl, streamWord) !== 0 || i >= 120) {
        this.waitFor(word, v, counter);
        return false;
      }
      if (i >= 100) {
        Atomics.add(ctl, counter, 1);
        Atomics.wait(ctl, word, v, 0.2);
        Atomics.sub(ctl, counter, 1);
      }
    }
  }

  #unlock(word: number, counter: number): void {
    Atomics.store(this.ctl, word, 0);
    this.notify(word, counter, 1);
  }

  // ---- producing ----

  /**
   * Puts the item last encoded by `enc` (`size` bytes): written straight
   * into the ring when it can be now, else buffered in this process and
   * written by the flusher. Never blocks for long.
   */
  put(enc: Encoder, size: number): void {
    checkNotTerminated();
    if (
      this.#pending.length === 0 && this.#lock(WLOCK, WSTREAM, WLOCK_WAITERS)
    ) {
      const sent = this.#write(enc, size, 0);
      if (sent === 0) this.#wait(enc, size);
      else if (sent < size) {
        const rest = this.#privateBytes(size - sent);
        enc.copyTo(rest, 0, sent, size);
        this.#pending.push({ src: new Owned(rest, -sent), size, sent });
      }
      if (!this.#streaming) this.#unlock(WLOCK, WLOCK_WAITERS);
      if (sent < size) this.#flusher.start();
      return;
    }
    this.#wait(enc, size);
    // The flusher runs only when this process's event loop turns, which a
    // loop of puts may not let it do: move what fits now and then.
    if ((this.#bytesSinceFlush += size) >= FLUSH_BYTES) {
      this.#bytesSinceFlush = 0;
      if (this.flushStep(false)) return;
    }
    this.#flusher.start();
  }

  /** Keeps the item last encoded (`size` bytes) waiting in this process, after those already waiting. */
  #wait(enc: Encoder, size: number): void {
    if (size > SPILL_ITEM || size > this.#maxWhole) {
      const bytes = this.#privateBytes(size);
      enc.copyTo(bytes, 0, 0, size);
      this.#pending.push({ src: new Owned(bytes, 0), size, sent: 0 });
      return;
    }
    const need = 8 + align8(size);
    if (this.#spillW + need > this.#spill.length) this.#growSpill(need);
    this.#spill32[this.#spillW >> 2] = size;
    enc.copyTo(this.#spill, this.#spillW + 8, 0, size);
    this.#spillW += need;
    const last = this.#pending.last();
    if (last !== undefined && "count" in last) last.count++;
    else this.#pending.push({ count: 1 });
  }

  /**
   * A private buffer of `n` bytes for an item that waits: the one kept from
   * the last such item when it is big enough (a fresh 1 MiB buffer costs
   * ~0.3 ms in page faults, a big item's whole write here).
   */
  #privateBytes(n: number): Uint8Array {
    const kept = this.#kept;
    if (kept !== undefined && kept.length >= n) {
      this.#kept = undefined;
      return kept.length === n ? kept : kept.subarray(0, n);
    }
    return new Uint8Array(n);
  }

  /** Keeps a waiting item's buffer, once written out, for the next one (up to `KEEP_PRIVATE` bytes). */
  #keepBytes(bytes: Uint8Array): void {
    const whole = new Uint8Array(bytes.buffer);
    if (
      whole.length <= KEEP_PRIVATE &&
      (this.#kept === undefined || this.#kept.length < whole.length)
    ) this.#kept = whole;
  }

  /** Makes room for `need` more bytes in the spill buffer: compacts it, or grows it. */
  #growSpill(need: number): void {
    const used = this.#spillW - this.#spillR;
    const old = this.#spill;
    if (used + need <= old.length) {
      old.copyWithin(0, this.#spillR, this.#spillW);
      this.#spillR = 0;
      this.#spillW = used;
      return;
    }
    const buf = new Uint8Array(Math.max(2 * old.length, used + need, 65536));
    buf.set(old.subarray(this.#spillR, this.#spillW), 0);
    this.#spill = buf;
    this.#spill32 = new Uint32Array(buf.buffer);
    this.#spillR = 0;
    this.#spillW = used;
  }

  /** Writes what fits of a run of spilled items; true when the whole run went. */
  #writeRun(run: SpillRun): boolean {
    const src = this.#spilled;
    src.bytes = this.#spill;
    while (run.count > 0) {
      const size = this.#spill32[this.#spillR >> 2];
      src.zero = this.#spillR + 8;
      if (this.#write(src, size, 0) === 0) return false;
      this.#spillR += 8 + align8(size);
      run.count--;
    }
    if (this.#spillR === this.#spillW) {
      this.#spillR = this.#spillW = 0;
      if (this.#spill.length > SPILL_KEEP) {
        this.#spill = new Uint8Array(0);
        this.#spill32 = new Uint32Array(0);
        src.bytes = this.#spill; // nor kept alive by the Source
      }
    }
    return true;
  }

  /** True while this process has items not yet written into the ring. */
  get buffering(): boolean {
    return this.#pending.length > 0;
  }

  /**
   * For a pipe's ring: true once nobody can read it any more (the reading
   * end closed, or its process ended). Unset for a queue: any process that
   * holds it may read it later.
   */
  readerGone: (() => boolean) | undefined;

  /**
   * Drops the items this process could not write yet when nobody can read
   * them any more (see {@linkcode ItemRing.readerGone}); true when it did:
   * waiting on, they would hold the program forever.
   */
  dropIfUnread(): boolean {
    if (this.#pending.length === 0 || !this.readerGone?.()) return false;
    this.#pending = new Fifo();
    this.#spillR = this.#spillW = 0;
    this.#kept = undefined;
    if (this.#streaming) {
      this.#streaming = false;
      Atomics.store(this.ctl, WSTREAM, 0);
      this.#unlock(WLOCK, WLOCK_WAITERS);
    }
    return true;
  }

  /**
   * Writes as much of this process's buffered items as fits now. True when
   * none is left; else false, having said what to wait for.
   */
  flushStep(patient = true): boolean {
    checkNotTerminated();
    const pending = this.#pending;
    while (pending.length) {
      if (
        !this.#streaming &&
        !this.#lock(WLOCK, WSTREAM, WLOCK_WAITERS, patient)
      ) {
        return false;
      }
      let done = true;
      while (pending.length) {
        const it = pending.peek()!;
        if ("count" in it) {
          if (!this.#writeRun(it)) {
            done = false;
            break;
          }
        } else {
          it.sent = this.#write(it.src, it.size, it.sent);
          if (it.sent < it.size) {
            done = false;
            break;
          }
          this.#keepBytes((it.src as Owned).bytes);
        }
        pending.shift();
      }
      if (!this.#streaming) this.#unlock(WLOCK, WLOCK_WAITERS);
      if (!done) return false;
    }
    return true;
  }

  /** Resolves once every item this process put is in the ring. */
  drain(): Promise<void> {
    return this.#flusher.drain();
  }

  /** Python's `cancel_join_thread`: this process will not wait for its buffered items when it ends. */
  cancelDrainAtExit(): void {
    this.#flusher.cancelDrainAtExit();
  }

  /**
   * With the producer lock held: writes what fits of an item of `size`
   * bytes of which `sent` are already in the ring; returns the new `sent`.
   * Short of space, says to wait for `HEAD` to move.
   */
  #write(src: Source, size: number, sent: number): number {
    // Words only the holder of the producer side writes (TAIL, WSEQ) are
    // read plainly: taking the lock orders them. TAIL is still stored
    // atomically, for the consumers.
    const ctl = this.ctl;
    const cap = this.capacity;
    let tail = ctl[TAIL];
    // HEAD only moves on: an old value of it undercounts the free space, so
    // look at the consumers' side (another core's cache line) only when
    // short of room. Only while no other producer wrote since this one
    // last looked, though: past 4 GiB of their traffic, the old value
    // would wrap around and overcount it.
    let head = this.#headSeen;
    let free = cap - ((tail - head) >>> 0);
    if (
      free < cap / 2 || sent !== 0 || size > this.#maxWhole ||
      tail !== this.#tailMine
    ) {
      head = this.#headSeen = Atomics.load(ctl, HEAD);
      free = cap - ((tail - head) >>> 0);
    }
    if (sent === 0) {
      const seq = ctl[WSEQ];
      if (size <= this.#maxWhole) {
        const rec = align8(HDR + size);
        if (free < rec) {
          this.waitFor(HEAD, head, SPACE_WAITERS);
          return 0;
        }
        const at = tail & this.#mask;
        this.#u32[at >> 2] = (WHOLE << KIND_SHIFT) | size;
        this.#u32[(at >> 2) + 1] = seq;
        this.#copyIn(src, (at + HDR) & this.#mask, 0, size);
        ctl[WSEQ] = seq + 1;
        this.#commitTail(tail + rec);
        return size;
      }
      // A FIRST never holds the whole item: a LAST always ends a stream.
      // Pieces but the last are whole words, so the item's bytes keep their
      // alignment in the ring (see `wire/_encode.ts`).
      const chunk =
        Math.min(size - 1, free - HDR - TOTAL_BYTES, this.#maxChunk) &
        ~7;
      if (chunk < Math.min(size, this.#minChunk)) {
        this.waitFor(HEAD, head, SPACE_WAITERS);
        return 0;
      }
      const at = tail & this.#mask;
      this.#u32[at >> 2] = (FIRST << KIND_SHIFT) | (chunk + TOTAL_BYTES);
      this.#u32[(at >> 2) + 1] = seq;
      const p = (at + HDR) & this.#mask;
      this.#u32[p >> 2] = size >>> 0;
      this.#u32[(p >> 2) + 1] = Math.floor(size / 2 ** 32);
      this.#copyIn(src, (p + TOTAL_BYTES) & this.#mask, 0, chunk);
      ctl[WSEQ] = seq + 1;
      Atomics.store(ctl, WSTREAM, (seq + 1) | 0 || 1);
      this.#streaming = true;
      tail = tail + align8(HDR + TOTAL_BYTES + chunk);
      this.#commitTail(tail);
      sent = chunk;
    }
    while (sent < size) {
      checkNotTerminated();
      head = Atomics.load(ctl, HEAD);
      const free = cap - ((tail - head) >>> 0);
      const left = size - sent;
      const room = Math.min(free - HDR, this.#maxChunk) & ~7;
      const chunk = left <= room ? left : room;
      if (chunk < Math.min(left, this.#minChunk)) {
        this.waitFor(HEAD, head, SPACE_WAITERS);
        return sent;
      }
      const kind = chunk === left ? LAST : MIDDLE;
      const at = tail & this.#mask;
      this.#u32[at >> 2] = (kind << KIND_SHIFT) | chunk;
      this.#u32[(at >> 2) + 1] = 0;
      this.#copyIn(src, (at + HDR) & this.#mask, sent, sent + chunk);
      tail = tail + align8(HDR + chunk);
      this.#commitTail(tail);
      sent += chunk;
    }
    Atomics.store(ctl, WSTREAM, 0);
    this.#streaming = false;
    return sent;
  }

  /** Copies item bytes `[from, to)` into the ring at offset `at`, wrapping. */
  #copyIn(src: Source, at: number, from: number, to: number): void {
    const first = Math.min(to - from, this.capacity - at);
    src.copyTo(this.#data, at, from, from + first);
    if (from + first < to) src.copyTo(this.#data, 0, from + first, to);
  }

  #commitTail(tail: number): void {
    this.moved++;
    this.#tailMine = tail | 0;
    Atomics.store(this.ctl, TAIL, tail | 0);
    // One consumer per item; but every one for the pieces of a stream, so
    // that the one receiving it is sure to wake.
    this.notify(TAIL, DATA_WAITERS, this.#streaming ? undefined : 1);
  }

  // ---- consuming ----

  /**
   * Takes the next item if one is here now; else returns NOTHING, having
   * said what to wait for. A streamed item, once started, holds the consumer
   * side until it is complete: call again until it is.
   */
  tryGet(): unknown {
    checkNotTerminated();
    const ctl = this.ctl;
    if (!this.#asm && !this.#lock(RLOCK, RSTREAM, RLOCK_WAITERS)) {
      return NOTHING;
    }
    for (;;) {
      const head = ctl[HEAD];
      // TAIL only moves on: records up to an old value of it are still there
      // (HEAD is below it); look at the producers' side only when past it,
      // or when another consumer moved HEAD on (past 2 GiB of its reads, the
      // old value would look ahead of HEAD again).
      let tail = this.#tailSeen;
      if (((tail - head) | 0) <= 0 || head !== this.#headMine) {
        tail = this.#tailSeen = Atomics.load(ctl, TAIL);
      }
      if (head === tail) {
        if (this.#asm) {
          if (!this.#abandoned(tail)) {
            this.waitFor(TAIL, tail, DATA_WAITERS);
            return NOTHING;
          }
          this.#dropAssembly();
          continue;
        }
        this.#unlock(RLOCK, RLOCK_WAITERS);
        this.waitFor(TAIL, tail, DATA_WAITERS);
        return NOTHING;
      }
      const at = head & this.#mask;
      const w0 = this.#u32[at >> 2];
      const seq = this.#u32[(at >> 2) + 1];
      const kind = w0 >>> KIND_SHIFT;
      const len = w0 & LEN_MASK;
      const next = head + align8(HDR + len);
      const p = (at + HDR) & this.#mask;
      if (kind === WHOLE) {
        if (this.#asm) this.#dropAssembly();
        if (len <= COPY_OUT) {
          // Small: copy it out, let the other consumers go, then decode.
          const scratch = this.#scratchOf(len);
          this.#copyOut(scratch, 0, p, len);
          ctl[RSEQ] = seq + 1;
          this.#commitHead(next);
          this.#unlock(RLOCK, RLOCK_WAITERS);
          return this.#decoder.decode(scratch, 0, len);
        }
        let value: unknown;
        let error: unknown;
        let failed = false;
        try {
          value = this.#decodeAt(p, len);
        } catch (e) {
          failed = true;
          error = e;
        }
        ctl[RSEQ] = seq + 1;
        this.#commitHead(next);
        this.#unlock(RLOCK, RLOCK_WAITERS);
        if (failed) throw error;
        return value;
      }
      if (kind === FIRST) {
        checkNotTerminated();
        if (this.#asm) this.#dropAssembly();
        const total = this.#u32[p >> 2] + this.#u32[(p >> 2) + 1] * 2 ** 32;
        const data = (p + TOTAL_BYTES) & this.#mask;
        const plan = rawPlan(this.#data.subarray(data, data + RAW_HEAD), total);
        const asm: Assembly = {
          buf: plan ? new Uint8Array(plan.length) : this.#assemblyBuffer(total),
          pos: 0,
          total,
          plan,
          id: (seq + 1) | 0 || 1,
        };
        this.#absorb(asm, data, len - TOTAL_BYTES);
        this.#asm = asm;
        Atomics.store(ctl, RSTREAM, 1);
        ctl[RSEQ] = seq + 1;
        this.#commitHead(next);
        continue;
      }
      checkNotTerminated();
      const asm = this.#asm;
      if (!asm || asm.pos + len > asm.total) {
        // A piece of an item whose start a dead reader took: skip it.
        if (asm) this.#dropAssembly();
        this.#commitHead(next);
        continue;
      }
      this.#absorb(asm, p, len);
      this.#commitHead(next);
      if (kind === LAST) {
        this.#asm = null;
        Atomics.store(ctl, RSTREAM, 0);
        this.#unlock(RLOCK, RLOCK_WAITERS);
        if (asm.plan) return asm.plan.finish(asm.buf.buffer as ArrayBuffer);
        return this.#decoder.decode(asm.buf, 0, asm.total);
      }
    }
  }

  #asmBuf = new Uint8Array(0);

  /** A private buffer for a streamed item's encoding, reused from one item to the next. */
  #assemblyBuffer(total: number): Uint8Array {
    if (this.#asmBuf.length >= total) return this.#asmBuf;
    const buf = new Uint8Array(total);
    if (total <= KEEP_ASSEMBLY) this.#asmBuf = buf;
    return buf;
  }

  /** Takes `len` bytes of a streamed item from the ring at `at` into its assembly. */
  #absorb(asm: Assembly, at: number, len: number): void {
    const skip = asm.plan ? asm.plan.skip : 0;
    if (asm.pos < skip) {
      const s = Math.min(len, skip - asm.pos);
      at = (at + s) & this.#mask;
      len -= s;
      asm.pos += s;
    }
    if (len > 0) {
      this.#copyOut(asm.buf, asm.pos - skip, at, len);
      asm.pos += len;
    }
  }

  /** Internal, for tests: the sequence number of the record at the head. */
  headSeq(): number {
    const at = Atomics.load(this.ctl, HEAD) & this.#mask;
    return this.#u32[(at >> 2) + 1];
  }

  /** True while this process is in the middle of reading a streamed item. */
  get reading(): boolean {
    return this.#asm !== null;
  }

  /** With the ring read up to `tail`: has the writer of our stream gone? */
  #abandoned(tail: number): boolean {
    const ctl = this.ctl;
    const stream = Atomics.load(ctl, WSTREAM);
    const holder = Atomics.load(ctl, WLOCK);
    if (Atomics.load(ctl, TAIL) !== tail) return false;
    return stream !== this.#asm!.id || holder === 0 || holderGone(holder);
  }

  #dropAssembly(): void {
    this.#asm = null;
    Atomics.store(this.ctl, RSTREAM, 0);
  }

  #commitHead(head: number): void {
    this.moved++;
    this.#headMine = head | 0;
    Atomics.store(this.ctl, HEAD, head | 0);
    this.notify(HEAD, SPACE_WAITERS);
  }

  /** Decodes a record's payload in place (copied out first when it wraps). */
  #decodeAt(at: number, len: number): unknown {
    if (at + len <= this.capacity) {
      return this.#decoder.decode(this.#data, at, at + len);
    }
    const scratch = this.#scratchOf(len);
    this.#copyOut(scratch, 0, at, len);
    return this.#decoder.decode(scratch, 0, len);
  }

  #scratchOf(len: number): Uint8Array {
    if (this.#scratch.length < len) {
      this.#scratch = new Uint8Array(
        Math.max(len, 2 * this.#scratch.length, 256),
      );
    }
    return this.#scratch;
  }

  /** Copies `len` ring bytes from offset `at` (wrapping) into `dst` at `to`. */
  #copyOut(dst: Uint8Array, to: number, at: number, len: number): void {
    if (len <= 64) {
      const data = this.#data;
      const mask = this.#mask;
      for (let i = 0; i < len; i++) dst[to + i] = data[(at + i) & mask];
      return;
    }
    const first = Math.min(len, this.capacity - at);
    dst.set(this.#data.subarray(at, at + first), to);
    if (first < len) dst.set(this.#data.subarray(0, len - first), to + first);
  }
}
