/**
 * Where a token realm may be: `https`, or plain `http` only on loopback and hosts listed as
 * insecure; never a link-local or cloud-metadata address, where a credential (or even an
 * anonymous request the registry asked for) could reach an instance's secrets.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { withTimeout } from "../abortable.js";
import { UnsafeRealmError } from "../errors.js";
import type { InsecurePolicy } from "./send.js";

// getaddrinfo cannot be cancelled; the check stops waiting for it after this long.
const DNS_TIMEOUT_MS = 5_000;

const METADATA_NAMES = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
]);

/** Throws `UnsafeRealmError` unless `realm` is a place regscan may ask for a token. */
export async function checkRealm(
  realm: URL,
  registryHost: string,
  isInsecure: InsecurePolicy,
): Promise<void> {
  const hostname = bareHostname(realm.hostname);
  if (realm.protocol !== "https:") {
    const allowed =
      realm.protocol === "http:" &&
      (isLoopback(hostname) || isInsecure(realm.host) || isInsecure(hostname));
    if (!allowed) {
      throw new UnsafeRealmError(
        `token realm ${realm.origin} is not https (plain http only for loopback and insecure hosts)`,
        { host: registryHost },
      );
    }
  }
  if (METADATA_NAMES.has(hostname.toLowerCase()) || isForbiddenAddress(hostname)) {
    throw new UnsafeRealmError(`token realm ${realm.origin} is a link-local or metadata address`, {
      host: registryHost,
    });
  }
  if (isIP(hostname) === 0) {
    // A name may resolve to a metadata address; resolution failures are left to the request.
    const addresses = await withTimeout(
      lookup(hostname, { all: true }),
      DNS_TIMEOUT_MS,
      () => new Error("DNS look-up timed out"),
    ).catch(() => []);
    if (addresses.some((a) => isForbiddenAddress(a.address))) {
      throw new UnsafeRealmError(
        `token realm ${realm.origin} resolves to a link-local or metadata address`,
        { host: registryHost },
      );
    }
  }
}

/** Loopback names and addresses (127/8, ::1, localhost). */
export function isLoopback(hostname: string): boolean {
  const h = bareHostname(hostname).toLowerCase();
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
  const a = bareHostname(address).toLowerCase();
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
