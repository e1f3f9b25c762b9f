/**
 * Learns, once per host per factory, where a registry's API is (https, or plain http for an
 * insecure host whose https fails) and which authentication it asks for, by `GET /v2/`.
 * Failed pings are forgotten so that the next request tries again.
 */

import { raceAbort } from "../abortable.js";
import { NetworkError, registryErrorFromResponse } from "../errors.js";
import {
  discard,
  ERROR_BODY_LIMIT,
  type HttpResponse,
  readTextPrefix,
  type Transport,
} from "./exchange.js";
import { RETRY_STATUSES } from "./retry.js";
import type { InsecurePolicy } from "./send.js";
import { parseWwwAuthenticate, selectChallenge } from "./www-authenticate.js";

/** What the registry asks for. */
export type RegistryChallenge =
  | { scheme: "none" }
  | { scheme: "basic"; realm: string | undefined }
  | { scheme: "bearer"; realm: string; service: string | undefined };

/** A host's API base URL (`https://host` or `http://host`) and its challenge. */
export interface PingResult {
  base: URL;
  challenge: RegistryChallenge;
}

/** Remembers each host's ping; shared by every client of a factory. */
export class PingCache {
  readonly #results = new Map<string, Promise<PingResult>>();

  /**
   * @param transport the chain pings go through (with retries).
   * @param probe the same chain without retries, for the quick first look at an insecure
   *   host (default `transport`).
   */
  constructor(
    private readonly transport: Transport,
    private readonly isInsecure: InsecurePolicy,
    private readonly probe: Transport = transport,
  ) {}

  /** The host's ping result, pinging it the first time. */
  get(host: string, signal?: AbortSignal): Promise<PingResult> {
    let p = this.#results.get(host);
    if (!p) {
      // The first caller's signal must not cancel a ping that others share.
      p = this.#ping(host);
      this.#results.set(host, p);
      p.catch(() => this.#results.delete(host));
    }
    return raceAbort(p, signal);
  }

  async #ping(host: string): Promise<PingResult> {
    const https = new URL(`https://${host}/`);
    const http = new URL(`http://${host}/`);
    if (this.isInsecure(host)) {
      const quick = await this.#probeInsecure(https, http, host);
      if (quick) return quick;
    }
    try {
      return await this.#pingAt(https, host);
    } catch (err) {
      if (!(err instanceof NetworkError) || !this.isInsecure(host)) throw err;
      return await this.#pingAt(http, host);
    }
  }

  /**
   * An insecure host's https tried once, without retries: a plain-HTTP host answers TLS
   * with a reset, which the retry layer would otherwise retry for a second or more before
   * the fallback to http. Undefined when that gave no clear answer (a status the retries
   * are for, or http answering other than a registry's `/v2/`: 200, 401, or a refusal that
   * the retried ping would report too); the host is then pinged the usual, retried way.
   */
  async #probeInsecure(https: URL, http: URL, host: string): Promise<PingResult | undefined> {
    let res: HttpResponse | undefined;
    try {
      res = await this.#get(https, this.probe);
    } catch (err) {
      // What the retried ping does too: only a network failure falls back to http.
      if (!(err instanceof NetworkError)) throw err;
    }
    if (res) {
      if (!RETRY_STATUSES.has(res.status)) return await this.#resultOf(res, https, host);
      await discard(res);
      return undefined;
    }
    try {
      res = await this.#get(http, this.transport);
    } catch {
      return undefined;
    }
    if (res.status === 200 || res.status === 401 || res.status === 429 || res.status >= 500) {
      return await this.#resultOf(res, http, host);
    }
    // E.g. the 400 a TLS server answers plain HTTP with: https may have failed only for now.
    await discard(res);
    return undefined;
  }

  async #pingAt(base: URL, host: string): Promise<PingResult> {
    return this.#resultOf(await this.#get(base, this.transport), base, host);
  }

  /** No caller's signal: the ping is shared; each attempt has the request deadline. */
  #get(base: URL, transport: Transport): Promise<HttpResponse> {
    return transport({ method: "GET", url: new URL("/v2/", base), operation: "ping (GET /v2/)" });
  }

  async #resultOf(res: HttpResponse, base: URL, host: string): Promise<PingResult> {
    if (res.status === 401) {
      const challenge = challengeFrom(res.headers.get("www-authenticate"));
      await discard(res);
      return { base, challenge };
    }
    // A ping refused for now (still 429 or 5xx after the retries) says nothing about the
    // challenge; it must not be remembered as "no authentication".
    if (res.status === 429 || res.status >= 500) {
      const body = await readTextPrefix(res, ERROR_BODY_LIMIT);
      throw registryErrorFromResponse({ status: res.status, headers: res.headers, body, host });
    }
    await discard(res);
    return { base, challenge: { scheme: "none" } };
  }
}

/** The challenge to answer from a `WWW-Authenticate` header: Bearer preferred, then Basic. */
export function challengeFrom(header: string | null): RegistryChallenge {
  const chosen = selectChallenge(parseWwwAuthenticate(header));
  if (chosen === undefined) return { scheme: "none" };
  if (chosen.scheme === "basic") return { scheme: "basic", realm: chosen.realm };
  return { scheme: "bearer", realm: chosen.realm, service: chosen.service };
}
