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
  const http = new URL(`http://${host}/`);
  if (route.isInsecure(host)) {
    const quick = await probeInsecure({ https, http, host, route });
    if (quick) return quick;
  }
  try {
    return await pingAt(https, host, route.transport);
  } catch (err) {
    if (!(err instanceof NetworkError) || !route.isInsecure(host)) throw err;
    return await pingAt(http, host, route.transport);
  }
}

/**
 * An insecure host's https tried once, without retries: a plain-HTTP host answers TLS
 * with a reset, which the retry layer would otherwise retry for a second or more before
 * the fallback to http. Undefined when that gave no clear answer (a status the retries
 * are for, or http answering other than a registry's `/v2/`: 200, 401, or a refusal that
 * the retried ping would report too); the host is then pinged the usual, retried way.
 */
async function probeInsecure(probe: {
  https: URL;
  http: URL;
  host: string;
  route: PingRoute;
}): Promise<HostPolicy | undefined> {
  const { https, http, host, route } = probe;
  let res: HttpResponse | undefined;
  try {
    res = await get(https, route.probe);
  } catch (err) {
    // What the retried ping does too: only a network failure falls back to http.
    if (!(err instanceof NetworkError)) throw err;
  }
  if (res) {
    if (!RETRY_STATUSES.has(res.status)) return await policyOf(res, https, host);
    await discard(res);
    return undefined;
  }
  try {
    res = await get(http, route.transport);
  } catch {
    return undefined;
  }
  if (res.status === 200 || res.status === 401 || res.status === 429 || res.status >= 500) {
    return await policyOf(res, http, host);
  }
  // E.g. the 400 a TLS server answers plain HTTP with: https may have failed only for now.
  await discard(res);
  return undefined;
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
