/**
 * How an error message shows a bad value, the one formatter for every
 * "got ..." of the module: a string quoted (so `"3"` is not read as `3`), an
 * object by its kind.
 *
 * @module
 */

/** A value as an error message shows it: `"3"`, `3n`, `a function`, `an Object`, `a Map`. */
export function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "function") return "a function";
  if (typeof v === "symbol") return String(v);
  if (v === null || typeof v !== "object") return String(v);
  if (Array.isArray(v)) return "an array";
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  return name ? `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}` : "an object";
}

/**
 * `show(v)`, plus the fix when `v` is a string holding a number:
 * `"3": pass the number 3, not a string`.
 */
export function showNumber(v: unknown): string {
  return typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v))
    ? `${show(v)}: pass the number ${Number(v)}, not a string`
    : show(v);
}
