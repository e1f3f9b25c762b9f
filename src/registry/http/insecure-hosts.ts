/**
 * Which hosts the user listed as insecure (`--insecure-host`, `insecureHosts`): only these
 * may skip TLS verification and fall back to plain HTTP. An entry without a port matches
 * the host on any port; an entry with a port matches only that port.
 */
import { normaliseHostname } from "./host-names.js";

/** Whether TLS verification may be skipped (and plain http tried) for a host (`host[:port]`). */
export type InsecurePolicy = (host: string) => boolean;

/** Builds the policy from the user's list. */
export function insecureHostPolicy(entries: readonly string[]): InsecurePolicy {
  const exact = new Set<string>();
  const anyPort = new Set<string>();
  for (const raw of entries) {
    const entry = normalise(raw);
    if (entry === "") continue;
    if (splitPort(entry).port !== undefined) exact.add(entry);
    else anyPort.add(entry);
  }
  return (host: string) => {
    const h = normalise(host);
    return exact.has(h) || anyPort.has(splitPort(h).hostname);
  };
}

function normalise(host: string): string {
  let h = host.trim().toLowerCase();
  // Users paste URLs; only the authority counts.
  h = h.replace(/^[a-z][a-z0-9+.-]*:\/\//, "");
  const slash = h.indexOf("/");
  if (slash >= 0) h = h.slice(0, slash);
  if (h === "") return h;
  // One spelling per name: `Registry.Local.:5000` is `registry.local:5000`.
  const { hostname, port } = splitPort(h);
  const bare = normaliseHostname(hostname);
  const name = bare.includes(":") ? `[${bare}]` : bare;
  return port === undefined ? name : `${name}:${port}`;
}

/** `[::1]:5000` -> `[::1]` + `5000`; `::1` (bare IPv6) has no port. */
function splitPort(host: string): { hostname: string; port: string | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(host);
  if (m?.[1] !== undefined) return { hostname: m[1], port: m[2] };
  return { hostname: host, port: undefined };
}
