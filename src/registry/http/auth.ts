/**
 * The auth layer: answers the host's challenge on each request to the registry — a cached
 * Bearer token for the repository's scope, Basic credentials when the registry asks for
 * Basic, or nothing. A `401` on a cached token gets one fresh token and one retry.
 * Requests to any other host pass through without credentials.
 */
import type { HostCredential } from "../credentials/credentials.js";
import { raceAbort } from "./abortable.js";
import { discard, type HttpRequest, type Transport } from "./exchange.js";
import { challengeFrom, type PingCache, type RegistryChallenge } from "./ping.js";
import type { InsecurePolicy } from "./send.js";
import { TokenCache } from "./token-cache.js";
import { basicAuthorization, fetchToken } from "./token-fetch.js";

/** How long one token fetch (retries included) may take. */
const TOKEN_FETCH_TIMEOUT_MS = 60_000;

/** What the auth layer needs to know about the client it serves. */
export interface AuthContext {
  /** The registry's API host, e.g. `registry-1.docker.io` or `127.0.0.1:5000`. */
  host: string;
  /** e.g. `repository:library/alpine:pull`. */
  scope: string;
  /** The credential for `host`, resolved lazily (once per client). */
  credential: (signal?: AbortSignal) => Promise<HostCredential | undefined>;
  pings: PingCache;
  tokens: TokenCache;
  /** Transport for token requests (no auth layer). */
  tokenTransport: Transport;
  isInsecure: InsecurePolicy;
}

/** Wraps `next` with authentication for `ctx.host`. */
export function authTransport(next: Transport, ctx: AuthContext): Transport {
  // What this repository's own 401 asked for, when the ping of /v2/ asked for nothing.
  let learned: RegistryChallenge | undefined;
  return async (req) => {
    if (req.url.host !== ctx.host) return next(req);
    const challenge = learned ?? (await ctx.pings.get(ctx.host, req.signal)).challenge;
    const first = await authorize(req, challenge, ctx);
    const res = await next(first.req);
    if (res.status !== 401) return res;

    // A 401 after a ping that asked for nothing: the repository asks for more than /v2/ did.
    const fresh = challengeFrom(res.headers.get("www-authenticate"));
    const retryChallenge = challenge.scheme === "none" ? fresh : challenge;
    if (challenge.scheme === "none" && fresh.scheme !== "none") learned = fresh;
    const canRetry =
      (first.tokenKey !== undefined && first.token !== undefined) ||
      (challenge.scheme === "none" && fresh.scheme !== "none");
    if (!canRetry) return res;
    if (first.tokenKey !== undefined && first.token !== undefined)
      ctx.tokens.invalidate(first.tokenKey, first.token);
    await discard(res);
    // invalidate() dropped the refused token, so this fetches a new one.
    const second = await authorize(req, retryChallenge, ctx);
    return next(second.req);
  };
}

interface Authorized {
  req: HttpRequest;
  tokenKey?: string;
  token?: string;
}

async function authorize(
  req: HttpRequest,
  challenge: RegistryChallenge,
  ctx: AuthContext,
): Promise<Authorized> {
  // A registry that asks for nothing gets nothing: no credential helper is even run.
  if (challenge.scheme === "none") return { req };
  const cred = await ctx.credential(req.signal);
  if (cred?.registryToken) {
    return { req: withAuthorization(req, `Bearer ${cred.registryToken}`) };
  }
  if (challenge.scheme === "basic") {
    if (cred?.username === undefined || cred.password === undefined) return { req };
    return { req: withAuthorization(req, basicAuthorization(cred.username, cred.password)) };
  }
  const key = TokenCache.key(challenge.realm, challenge.service, ctx.scope, cred);
  const fetch = () =>
    fetchToken(ctx.tokenTransport, ctx.isInsecure, {
      realm: challenge.realm,
      service: challenge.service,
      scope: ctx.scope,
      credential: cred,
      registryHost: ctx.host,
      // Concurrent requests share this fetch, so it has its own deadline, not the caller's.
      signal: AbortSignal.timeout(TOKEN_FETCH_TIMEOUT_MS),
    });
  const cached = await raceAbort(ctx.tokens.get(key, fetch), req.signal);
  return {
    req: withAuthorization(req, `Bearer ${cached.token}`),
    tokenKey: key,
    token: cached.token,
  };
}

function withAuthorization(req: HttpRequest, value: string): HttpRequest {
  return { ...req, headers: { ...req.headers, authorization: value } };
}
