/**
 * One spelling per host name, so that a policy cannot be got past by writing a name another
 * way: lower case, IDNA (punycode) form, no trailing dot (`metadata.google.internal.` is the
 * same host as `metadata.google.internal`), IPv6 without brackets.
 */

import { isIP } from "node:net";
import { domainToASCII } from "node:url";

/** The canonical form of a host name or address (no port). */
export function normaliseHostname(hostname: string): string {
  let h = hostname.trim();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  h = h.toLowerCase();
  if (isIP(h) !== 0) return h;
  h = h.replace(/\.+$/, "");
  // domainToASCII gives "" for what is not a valid domain; the lower-cased form stays then.
  const ascii = domainToASCII(h);
  return ascii === "" ? h : ascii;
}
