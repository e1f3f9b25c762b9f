/**
 * Which watched repository a webhook event names. Senders name repositories their own way:
 * the distribution registry and ACR by the host the pusher used (`request.host`), which may
 * not be the host regscan talks to (a proxy, a load balancer, an internal name); Harbor
 * sometimes without a host at all. So: the canonical name first, then the repository path
 * alone when the event's host is not one regscan watches and exactly one watched
 * repository has that path.
 */
import { type ImageName, parseImageName } from "../image/ref.js";

/** The canonical name of the watched repository `named` means, or undefined. */
export function matchWatchedRepository(
  named: string,
  watched: readonly string[],
): string | undefined {
  let name: ImageName;
  try {
    name = parseImageName(named);
  } catch {
    return undefined;
  }
  const canonical = name.toString();
  if (watched.includes(canonical)) return canonical;
  const explicitHost = hasExplicitHost(named);
  const hosts = new Set(watched.map((w) => hostOf(w)));
  // The event names a host regscan watches: then it means that host's repository, which
  // is not watched (another registry's repository of the same path is not it).
  if (explicitHost && hosts.has(name.domain)) return undefined;
  const path = explicitHost ? name.path : named.toLowerCase() === named ? named : undefined;
  const paths = new Set([name.path, ...(path === undefined ? [] : [path])]);
  const candidates = watched.filter((w) => paths.has(w.slice(hostOf(w).length + 1)));
  return candidates.length === 1 ? candidates[0] : undefined;
}

/** As the reference grammar decides: a first component with `.` or `:`, or `localhost`. */
function hasExplicitHost(named: string): boolean {
  const slash = named.indexOf("/");
  if (slash < 0) return false;
  const first = named.slice(0, slash);
  return first.includes(".") || first.includes(":") || first === "localhost";
}

function hostOf(canonical: string): string {
  const slash = canonical.indexOf("/");
  return slash < 0 ? canonical : canonical.slice(0, slash);
}
