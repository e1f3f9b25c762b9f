/**
 * Redaction of text that came from the outside (a registry's message, a host, a path)
 * before it goes into an error message or a log line: no secret, no control character,
 * and bounded, so that a hostile server can neither leak a credential nor flood a log.
 */

/** Messages from a registry are cut to this many characters. */
export const MAX_OUTSIDE_TEXT = 200;

/**
 * Removes what could be secret from a string that came from the outside: a URL's userinfo
 * and query, and anything following `Bearer` / `Basic`. Also drops control characters and
 * shortens it.
 */
export function sanitizeText(text: string, max = MAX_OUTSIDE_TEXT): string {
  let out = text
    .replace(/\p{Cc}+/gu, " ")
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, "$1")
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s?#]*)\?[^\s#]*/gi, "$1?…")
    .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi, "$1 …")
    .replace(/\b(password|passwd|token|access_token|refresh_token|secret)=[^\s&"']+/gi, "$1=…");
  if (out.length > max) out = `${out.slice(0, max)}…`;
  return out;
}

/** A host as it may appear in a message: no userinfo, no path, bounded. */
export function sanitizeHost(host: string): string {
  const at = host.lastIndexOf("@");
  return sanitizeText(at >= 0 ? host.slice(at + 1) : host, 255);
}
