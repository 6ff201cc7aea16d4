/**
 * First module a child evaluates, before the target's module: it marks the
 * child as "importing", so that a `Process.start()` run by that module's top
 * level (a missing `if (import.meta.main)` guard) fails instead of spawning
 * children forever. The bootstrap clears the mark once the module loaded.
 *
 * @module
 */
(globalThis as Record<symbol, unknown>)[Symbol.for("mp.importing")] = true;
