/**
 * A first-in first-out list. `Array.prototype.shift` is O(n) once an array
 * is big (V8 moves every element past ~16k items: 3 us a shift at 16k, 34 us
 * at 200k, measured), so every queue-like list uses this.
 *
 * @module
 */

/** A FIFO with O(1) push and shift. */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  /** Number of items. */
  get length(): number {
    return this.#items.length - this.#head;
  }
  /** Adds at the end. */
  push(x: T): void {
    this.#items.push(x);
  }
  /** The front item, left in place. */
  peek(): T | undefined {
    return this.#items[this.#head];
  }
  /** The last item, left in place. */
  last(): T | undefined {
    return this.#items.length > this.#head
      ? this.#items[this.#items.length - 1]
      : undefined;
  }
  /** Takes from the front. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const x = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return x;
  }
  /** Puts `xs` back at the front, in order. */
  unshiftAll(xs: T[]): void {
    this.#items = [...xs, ...this.#items.slice(this.#head)];
    this.#head = 0;
  }
  /** Takes everything. */
  drain(): T[] {
    const out = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return out;
  }
}
