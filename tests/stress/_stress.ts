// What the stress tests share: their size (small enough for CI by default,
// larger with MP_STRESS=1, as `deno task stress` runs them) and how they
// start their children (targets from ./_targets.ts).
import { Process } from "../../mod.ts";

/** True under `deno task stress` (MP_STRESS=1). */
export const STRESS: boolean = Deno.env.get("MP_STRESS") === "1";

/** `ci` in the ordinary suite, `stress` under `deno task stress`. */
export function scaled(ci: number, stress: number): number {
  return STRESS ? stress : ci;
}

const module = new URL("./_targets.ts", import.meta.url);

/** Starts a child running `target` (exported from ./_targets.ts). */
export async function start(
  // deno-lint-ignore no-explicit-any
  target: (...a: any[]) => unknown,
  args: unknown[],
): Promise<Process> {
  const p = new Process({ target, args, module });
  await p.start();
  return p;
}
