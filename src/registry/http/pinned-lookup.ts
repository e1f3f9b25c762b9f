/**
 * A `lookup` for `net.connect` / `tls.connect` that answers with addresses already checked
 * by a policy instead of asking DNS again: a name that resolved to a safe address for the
 * check cannot resolve to a metadata address for the connection (DNS rebinding).
 */
import type { LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";

/** An address as `dns.lookup` gives it. */
export interface PinnedAddress {
  address: string;
  family: number;
}

/** Error of a pinned name that resolved to nothing, shaped as DNS failures are. */
function notFound(hostname: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  err.code = "ENOTFOUND";
  return err;
}

/**
 * Answers look-ups of `hostname` with `addresses` only; any other name (there should be
 * none: the connection is to the pinned host) is refused too.
 */
export function pinnedLookup(
  hostname: string,
  addresses: readonly PinnedAddress[],
): LookupFunction {
  const pinned = hostname.toLowerCase();
  return (name, options, callback) => {
    const usable = name.toLowerCase() === pinned ? filterFamily(addresses, options.family) : [];
    const first = usable[0];
    if (first === undefined) {
      process.nextTick(() => callback(notFound(name), "", 4));
      return;
    }
    if (options.all) {
      const all: LookupAddress[] = usable.map((a) => ({ address: a.address, family: a.family }));
      process.nextTick(() => callback(null, all));
      return;
    }
    process.nextTick(() => callback(null, first.address, first.family));
  };
}

function filterFamily(
  addresses: readonly PinnedAddress[],
  family: number | string | undefined,
): PinnedAddress[] {
  const wanted = family === "IPv4" ? 4 : family === "IPv6" ? 6 : family;
  if (wanted !== 4 && wanted !== 6) return [...addresses];
  return addresses.filter((a) => a.family === wanted);
}

/** A key naming a pin set, for reusing a dispatcher made for it. */
export function pinKey(hostname: string, addresses: readonly PinnedAddress[]): string {
  return `${hostname.toLowerCase()}|${addresses.map((a) => `${a.family}/${a.address}`).join(",")}`;
}
