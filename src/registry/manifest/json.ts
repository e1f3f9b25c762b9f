/**
 * Parses untrusted JSON (manifests, config blobs, history entries) into an object, turning
 * every failure into the caller's typed error so decoders throw nothing else.
 */

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses JSON, turning every failure into `fail` (deep nesting included). */
export function parseJsonObject(
  bytes: Uint8Array,
  fail: (reason: string) => never,
): Record<string, unknown> {
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
