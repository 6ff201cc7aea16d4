/**
 * Work a child process finishes before it ends after its target returned,
 * like Python's finalizers that join a queue's feeder thread: a queue's
 * items still buffered in this process are written out first. The child
 * bootstrap awaits {@linkcode runAtExit}.
 *
 * @module
 */

const hooks = new Set<() => unknown>();

/** Registers `hook` to run (and be awaited) before this process ends; returns its remover. */
export function atExit(hook: () => unknown): () => void {
  hooks.add(hook);
  return () => hooks.delete(hook);
}

/** Runs the registered hooks in order, awaiting each; errors are reported, not thrown. */
export async function runAtExit(): Promise<void> {
  for (const hook of [...hooks]) {
    try {
      await hook();
    } catch (e) {
      console.error("error in an exit hook:", e);
    }
  }
}
