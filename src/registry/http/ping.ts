/**
 * What `GET /v2/` tells about a host: where its API is (https, or plain http for an insecure
 * host whose https fails) and which authentication it asks for. The origin layer pings each
 * host once and keeps the answer.
 */
import { NetworkError } from "../errors.js";
import { discard, type HttpResponse, type Transport } from "./exchange.js";
import type { InsecurePolicy } from "./insecure-hosts.js";
import { RETRY_STATUSES } from "./retry.js";
import { expectStatus } from "./status.js";
import { parseWwwAuthenticate, selectChallenge } from "./www-authenticate.js";

/** What the registry asks for. */
export type RegistryChallenge =
  | { scheme: "none" }
  | { scheme: "basic"; realm: string | undefined }
  | { scheme: "bearer"; realm: string; service: string | undefined };

/** A host's API base URL (`https://host` or `http://host`) and the challenge it answered with. */
export interface HostPolicy {
  base: URL;
  challenge: RegistryChallenge;
}

/** How a ping is sent. */
export interface PingRoute {
  /** The chain pings go through (with retries). */
  transport: Transport;
  /** The same chain without retries, for the quick first look at an insecure host. */
  probe: Transport;
  isInsecure: InsecurePolicy;
}

/** Pings `host` and tells its policy; fails (to be asked again later) when it cannot tell. */
export async function pingHost(host: string, route: PingRoute): Promise<HostPolicy> {
  const https = new URL(`https://${host}/`);
  if (!route.isInsecure(host)) return await pingAt(https, host, route.transport);
  return await pingInsecure({ https, http: new URL(`http://${host}/`), host, route });
}

/** Where an insecure host is pinged. */
interface InsecurePing {
  https: URL;
  http: URL;
  host: string;
  route: PingRoute;
}

/**
 * An insecure host: https is tried once, without retries (a plain-HTTP host answers TLS with
 * a reset, which the retry layer would otherwise retry for a second or more before the
 * fallback to http), then plain http the retried way. Each scheme is pinged in one retry
 * sequence at most, so that the request's deadline and the retry policy bound the ping as
 * they bound any request: a host that never answers fails once, at the deadline its error
 * names; one that refuses connections goes through the retries once.
 */
async function pingInsecure(ping: InsecurePing): Promise<HostPolicy> {
  const { https, host, route } = ping;
  let res: HttpResponse;
  try {
    res = await get(https, route.probe);
  } catch (err) {
    // A timeout spent the deadline and is the answer; only a network failure (a refusal,
    // or what a plain-HTTP host answers TLS with) says https may not be the way.
    if (!(err instanceof NetworkError)) throw err;
    return await pingPlain(ping);
  }
  if (!RETRY_STATUSES.has(res.status)) return await policyOf(res, https, host);
  // The host speaks https and asks to be asked again: the retries are for that.
  await discard(res);
  return await pingAt(https, host, route.transport);
}

/**
 * An insecure host's plain-http ping, once its https look failed with a network error. Its
 * failure (after the retries) is the answer: pinging https again would take another deadline,
 * or another round of retries, to learn the same. Only a status a registry's `/v2/` does not
 * answer with (200, 401, 429 or 5xx) sends the ping back to https, retried: e.g. the 400 a
 * TLS server answers plain HTTP with, or a redirect to https; the https look may then have
 * failed only for now.
 */
async function pingPlain(ping: InsecurePing): Promise<HostPolicy> {
  const { https, http, host, route } = ping;
  const res = await get(http, route.transport);
  if (res.status === 200 || res.status === 401 || res.status === 429 || res.status >= 500) {
    return await policyOf(res, http, host);
  }
  await discard(res);
  return await pingAt(https, host, route.transport);
}

async function pingAt(base: URL, host: string, transport: Transport): Promise<HostPolicy> {
  return policyOf(await get(base, transport), base, host);
}

/** No caller's signal: the ping is shared; each attempt has the request deadline. */
function get(base: URL, transport: Transport): Promise<HttpResponse> {
  return transport({ method: "GET", url: new URL("/v2/", base), operation: "ping (GET /v2/)" });
}

async function policyOf(res: HttpResponse, base: URL, host: string): Promise<HostPolicy> {
  if (res.status === 401) {
    const challenge = challengeFrom(res.headers.get("www-authenticate"));
    await discard(res);
    return { base, challenge };
  }
  // A ping refused for now (still 429 or 5xx after the retries) says nothing about the
  // challenge; it must not be remembered as "no authentication".
  await expectStatus(res, (status) => status !== 429 && status < 500, { host });
  await discard(res);
  return { base, challenge: { scheme: "none" } };
}

/** The challenge to answer from a `WWW-Authenticate` header: Bearer preferred, then Basic. */
export function challengeFrom(header: string | null): RegistryChallenge {
  const chosen = selectChallenge(parseWwwAuthenticate(header));
  if (chosen === undefined) return { scheme: "none" };
  if (chosen.scheme === "basic") return { scheme: "basic", realm: chosen.realm };
  return { scheme: "bearer", realm: chosen.realm, service: chosen.service };
}
