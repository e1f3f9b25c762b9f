/**
 * Reads untrusted JSON (manifests, config blobs, history entries): parsing into an object
 * and picking typed fields, turning every failure into the caller's typed error so that
 * decoders throw nothing else.
 */

/** Throws the decoder's typed error for `reason`. */
export type Fail = (reason: string) => never;

/** A JSON object (not an array, not null). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `obj[key]` as a string; absent, `null` or `""` is `undefined`, another type fails. */
export function optionalString(
  obj: Record<string, unknown>,
  field: { key: string; where: string; fail: Fail },
): string | undefined {
  const { key, where, fail } = field;
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") return fail(`${where}.${key} is not a string`);
  return v === "" ? undefined : v;
}

/** Parses JSON, turning every failure into `fail` (deep nesting included). */
export function parseJsonObject(bytes: Uint8Array, fail: Fail): Record<string, unknown> {
  let text: string;
  let parsed: unknown;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return fail("not UTF-8");
  }
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail("not valid JSON");
  }
  if (!isObject(parsed)) return fail("not a JSON object");
  return parsed;
}
