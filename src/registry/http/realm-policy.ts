/**
 * Where a token realm may be: `https`, or plain `http` only on loopback and hosts listed as
 * insecure; never a link-local or cloud-metadata address, where a credential (or even an
 * anonymous request the registry asked for) could reach an instance's secrets. Names are
 * checked in their canonical spelling, and resolved once: the request is pinned to the
 * addresses that were checked.
 */
import { lookup as systemLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { withTimeout } from "../../abort.js";
import { UnsafeRealmError } from "../errors.js";
import { normaliseHostname } from "./host-names.js";
import type { PinnedAddress } from "./pinned-lookup.js";

/** Resolves a name to every address (as `dns.promises.lookup(name, { all: true })` does). */
export type HostResolver = (hostname: string) => Promise<PinnedAddress[]>;

/** The system resolver. */
export const systemResolver: HostResolver = (hostname) => systemLookup(hostname, { all: true });

/** What the check found: the addresses a realm given by name must be reached at. */
export interface RealmCheck {
  /** For a name: the checked addresses (empty when it did not resolve). None for an address. */
  pinned?: { hostname: string; addresses: PinnedAddress[] };
}

// getaddrinfo cannot be cancelled; the check stops waiting for it after this long.
const DNS_TIMEOUT_MS = 5_000;

const METADATA_NAMES = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
]);

/**
 * Throws `UnsafeRealmError` unless `realm` is a place regscan may ask for a token; for a
 * name, returns the addresses it was checked at, which the token request must use.
 */
export async function checkRealm(
  realm: URL,
  opts: {
    /** The registry that named the realm. */
    registryHost: string;
    isInsecure: (host: string) => boolean;
    /** Default: the system's resolver. */
    resolve?: HostResolver | undefined;
  },
): Promise<RealmCheck> {
  const { registryHost, isInsecure, resolve = systemResolver } = opts;
  const hostname = normaliseHostname(realm.hostname);
  if (realm.protocol !== "https:") {
    const allowed =
      realm.protocol === "http:" &&
      (isLoopback(hostname) || isInsecure(realm.host) || isInsecure(hostname));
    if (!allowed) {
      throw new UnsafeRealmError({
        message: `token realm ${realm.origin} is not https (plain http only for loopback and insecure hosts)`,
        host: registryHost,
      });
    }
  }
  if (METADATA_NAMES.has(hostname) || isForbiddenAddress(hostname)) {
    throw new UnsafeRealmError({
      message: `token realm ${realm.origin} is a link-local or metadata address`,
      host: registryHost,
    });
  }
  if (isIP(hostname) !== 0) return {};
  // A name may resolve to a metadata address. A failed look-up pins nothing: the request
  // then fails to connect rather than resolving the name a second time.
  const addresses = await withTimeout(resolve(hostname), {
    ms: DNS_TIMEOUT_MS,
    onTimeout: () => new Error("DNS look-up timed out"),
  }).catch((): PinnedAddress[] => []);
  if (addresses.some((a) => isForbiddenAddress(a.address))) {
    throw new UnsafeRealmError({
      message: `token realm ${realm.origin} resolves to a link-local or metadata address`,
      host: registryHost,
    });
  }
  // The name as the URL has it (trailing dot and all): that is what the connection looks up.
  return { pinned: { hostname: bareHostname(realm.hostname), addresses } };
}

/** Loopback names and addresses (127/8, ::1, localhost). */
export function isLoopback(hostname: string): boolean {
  const h = normaliseHostname(hostname);
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) {
    if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
    return mappedIPv4(h)?.startsWith("127.") ?? false;
  }
  return false;
}

/** Link-local (169.254/16, fe80::/10) and the known metadata addresses. */
export function isForbiddenAddress(address: string): boolean {
  const a = normaliseHostname(address);
  const family = isIP(a);
  if (family === 4) return a.startsWith("169.254.") || a === "100.100.100.200";
  if (family === 6) {
    if (/^fe[89ab][0-9a-f]:/.test(a)) return true;
    if (a === "fd00:ec2::254") return true;
    const v4 = mappedIPv4(a);
    return v4 !== undefined && isForbiddenAddress(v4);
  }
  return false;
}

/** The IPv4 address inside `::ffff:a.b.c.d` or its hex form `::ffff:a9fe:a9fe` (as URL writes it). */
function mappedIPv4(a: string): string | undefined {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted?.[1] !== undefined) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
  if (hex?.[1] === undefined || hex[2] === undefined) return undefined;
  const hi = Number.parseInt(hex[1], 16);
  const lo = Number.parseInt(hex[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function bareHostname(h: string): string {
  return h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
}
