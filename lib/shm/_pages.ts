/**
 * Shared memory in whole pages of the system, for buffers made and dropped
 * often (a pool's rings). A plain SharedArrayBuffer of a MiB comes from the C
 * allocator's heap, which keeps the memory once freed: creating and ending
 * pools grew the program by ~1 MB a cycle. A shared WebAssembly memory is
 * mapped pages, given back when the last view of it goes, and is otherwise
 * an ordinary fixed-length SharedArrayBuffer (as fast to read and write).
 *
 * @module
 */

/** WebAssembly's page: the buffer's length is rounded up to it. */
export const PAGE_BYTES = 65536;

/** A SharedArrayBuffer of at least `bytes` (rounded up to whole pages). */
export function pageBuffer(bytes: number): SharedArrayBuffer {
  const pages = Math.max(1, Math.ceil(bytes / PAGE_BYTES));
  try {
    return new WebAssembly.Memory({
      initial: pages,
      maximum: pages,
      shared: true,
    }).buffer as SharedArrayBuffer;
  } catch {
    // No shared WebAssembly memory here: the allocator's, then.
    return new SharedArrayBuffer(bytes);
  }
}
