// The size of a stress test: small enough for CI by default, larger with
// MP_STRESS=1 (`deno task stress`).

/** True under `deno task stress` (MP_STRESS=1). */
export const STRESS: boolean = Deno.env.get("MP_STRESS") === "1";

/** `ci` in the ordinary suite, `stress` under `deno task stress`. */
export function scaled(ci: number, stress: number): number {
  return STRESS ? stress : ci;
}
