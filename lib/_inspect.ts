/**
 * How the library's objects print, in the spirit of Python's reprs and in
 * Deno's style: `Lock { locked: false }`, `Queue { size: 3, maxsize: 0 }`.
 * Each class gives a `toString()` that calls {@linkcode repr} with what it
 * can read at once (its own fields, shared memory): never a wait, never a
 * round trip; its `Deno.customInspect` returns the same text.
 *
 * @module
 */

/** `name { key: value, ... }`; fields that are `undefined` are left out. */
export function repr(name: string, fields: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) parts.push(`${key}: ${show(value)}`);
  }
  return parts.length ? `${name} { ${parts.join(", ")} }` : `${name} {}`;
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  // Our objects print by their own toString (a Condition's lock, ...).
  return String(value);
}
