/**
 * Reading the response headers the registry side acts on, whatever form they come in
 * (fetch's `Headers` or undici's plain record): one header's value, and `Retry-After`.
 */

/** Headers as fetch (`Headers`) or undici's `request` (a plain record) give them. */
export type HeaderSource =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

/** One header's value (several joined by `, `), whatever form the headers come in. */
export function headerValue(headers: HeaderSource | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  if (typeof headers.get === "function") {
    const v = (headers as { get(name: string): string | null }).get(name);
    return v ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const lower = name.toLowerCase();
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() !== lower) continue;
    const v = record[key];
    return Array.isArray(v) ? v.join(", ") : v;
  }
  return undefined;
}

/**
 * Milliseconds to wait from a `Retry-After` value (delta seconds or an HTTP date), or
 * `undefined` when it is absent or unreadable. Capped at one day so a hostile value cannot
 * park a caller forever.
 */
export function parseRetryAfter(
  value: string | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  const day = 24 * 3600 * 1000;
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, day);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - now), day);
}
