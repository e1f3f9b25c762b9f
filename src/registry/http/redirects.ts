/**
 * Follows redirects by hand (registries send blobs to storage on other hosts): a hop to the
 * registry's own origin goes through the authenticated transport, a hop anywhere else
 * through a transport that adds nothing, with every credential header removed. Bounded in
 * hops; never from https down to plain http except to loopback or insecure hosts.
 */
import { RegistryResponseError } from "../errors.js";
import { discard, type HttpRequest, type HttpResponse, type Transport } from "./exchange.js";
import { isLoopback } from "./realm-policy.js";

/** Headers that carry credentials and must never leave the registry's origin. */
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization", "x-registry-auth"];

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Where to send each hop. */
export interface RedirectRoute {
  /** For the registry's own origin (adds authentication). */
  registry: Transport;
  /** For every other origin (adds nothing). */
  elsewhere: Transport;
  /** Whether a host was listed as insecure (a hop from https to its plain http is allowed). */
  isInsecure: (host: string) => boolean;
  /** Most hops followed (default 5). */
  maxRedirects?: number;
}

/** Sends `req` and follows redirects; the answer is the final, non-redirect response. */
export async function followRedirects(
  req: HttpRequest,
  route: RedirectRoute,
): Promise<HttpResponse> {
  const max = route.maxRedirects ?? 5;
  // A registry path has its origin once the origin layer has sent it: the answer's URL.
  let origin = req.url instanceof URL ? req.url.origin : undefined;
  let current = req;
  for (let hop = 0; ; hop++) {
    const sameOrigin = !(current.url instanceof URL) || current.url.origin === origin;
    const res = await (sameOrigin ? route.registry : route.elsewhere)(current);
    const at = current.url instanceof URL ? current.url : res.url;
    origin ??= at.origin;
    if (!REDIRECT_STATUSES.has(res.status)) return res;
    const location = res.headers.get("location");
    await discard(res);
    const host = req.url.host;
    if (!location) {
      throw new RegistryResponseError({
        message: "redirect without a Location",
        host,
        status: res.status,
      });
    }
    if (hop >= max) {
      throw new RegistryResponseError({
        message: `more than ${max} redirects`,
        host,
        status: res.status,
      });
    }
    let next: URL;
    try {
      next = new URL(location, at);
    } catch {
      throw new RegistryResponseError({
        message: "redirect to an invalid URL",
        host,
        status: res.status,
      });
    }
    if (next.protocol !== "https:" && next.protocol !== "http:") {
      throw new RegistryResponseError({
        message: "redirect to a non-HTTP URL",
        host,
        status: res.status,
      });
    }
    if (
      at.protocol === "https:" &&
      next.protocol === "http:" &&
      !isLoopback(next.hostname) &&
      !route.isInsecure(next.host)
    ) {
      throw new RegistryResponseError({
        message: "redirect from https to plain http",
        host,
        status: res.status,
      });
    }
    const headers = { ...current.headers };
    if (next.origin !== origin) {
      for (const key of Object.keys(headers)) {
        if (CREDENTIAL_HEADERS.includes(key.toLowerCase())) delete headers[key];
      }
    }
    // A 303 (and, as browsers do, 301/302 after a POST) turns into a GET without a body;
    // 307 and 308 repeat the request as it was.
    const toGet =
      (res.status === 303 && current.method !== "HEAD") ||
      (current.method === "POST" && (res.status === 301 || res.status === 302));
    // The deadline, the name in errors and the body bound go along; a body does not.
    const { body: _dropped, ...rest } = current;
    current = toGet
      ? { ...rest, method: "GET", url: next, headers }
      : { ...current, url: next, headers };
  }
}
