/**
 * The auth layer: answers the host's challenge on each request to the registry — a cached
 * Bearer token for the repository's scope, Basic credentials when the registry asks for
 * Basic, or nothing. A `401` on a cached token gets one fresh token and one retry.
 * Requests to any other host pass through without credentials.
 */

import { raceAbort } from "../../abort.js";
import type { HostCredential } from "../credentials/credentials.js";
import { TimeoutError } from "../errors.js";
import { discard, type HttpRequest, type Layer, type Transport } from "./exchange.js";
import type { Origins } from "./origin.js";
import { challengeFrom, type RegistryChallenge } from "./ping.js";
import type { HostResolver } from "./realm-policy.js";
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
  /** The hosts' policies: the challenge each answered its ping with, and which are insecure. */
  origins: Origins;
  tokens: TokenCache;
  /** How token realm names are resolved for the policy check (default: the system's). */
  resolveHost?: HostResolver | undefined;
}

/** The auth layer for one client; token requests go down the layers below it. */
export function authLayer(ctx: AuthContext): Layer {
  return (next) => authTransport(next, ctx);
}

function authTransport(next: Transport, ctx: AuthContext): Transport {
  // What this repository's own 401 asked for, when the ping of /v2/ asked for nothing.
  let learned: RegistryChallenge | undefined;
  const tokenKey = tokenKeys(ctx.scope);
  return async (req) => {
    if (req.url.host !== ctx.host) return next(req);
    const challenge = learned ?? (await ctx.origins.policy(ctx.host, req.signal)).challenge;
    const first = await authorize({ req, challenge, ctx, below: next, tokenKey });
    const res = await next(first.req);
    if (res.status !== 401) return res;

    const fresh = challengeFrom(res.headers.get("www-authenticate"));
    // A 401 after a ping that asked for nothing: this repository asks for more than /v2/ did.
    const learnt = challenge.scheme === "none" && fresh.scheme !== "none";
    if (learnt) learned = fresh;
    // A token that was just fetched and refused would only be refused again; a cached one
    // may have been revoked or have expired early, so it is worth one fresh token.
    const refused = first.cached;
    if (!learnt && refused === undefined) return res;
    if (refused) ctx.tokens.invalidate(refused.key, refused.token);
    await discard(res);
    const second = await authorize({
      req,
      challenge: learnt ? fresh : challenge,
      ctx,
      below: next,
      tokenKey,
    });
    return next(second.req);
  };
}

interface Authorized {
  req: HttpRequest;
  /** The token sent, when it came from the cache rather than a fetch for this request. */
  cached?: { key: string; token: string } | undefined;
}

/** `req` with the credentials `challenge` asks for; a token is fetched through `below`. */
async function authorize(attempt: {
  req: HttpRequest;
  challenge: RegistryChallenge;
  ctx: AuthContext;
  below: Transport;
  tokenKey: TokenKeys;
}): Promise<Authorized> {
  const { req, challenge, ctx, below, tokenKey } = attempt;
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
  const key = tokenKey(challenge, cred);
  const fetch = () => {
    // Concurrent requests share this fetch, so it has its own deadline, not the caller's.
    const signal = AbortSignal.timeout(TOKEN_FETCH_TIMEOUT_MS);
    return fetchToken(below, (host) => ctx.origins.isInsecure(host), {
      realm: challenge.realm,
      service: challenge.service,
      scope: ctx.scope,
      credential: cred,
      registryHost: ctx.host,
      signal,
      resolve: ctx.resolveHost,
    }).catch((err: unknown) => {
      // The deadline may expire between requests (a retry's back-off): still a TIMEOUT.
      if (!signal.aborted || err instanceof TimeoutError) throw err;
      throw new TimeoutError({
        host: ctx.host,
        operation: "token fetch",
        timeoutMs: TOKEN_FETCH_TIMEOUT_MS,
        cause: err,
      });
    });
  };
  const wasCached = ctx.tokens.has(key);
  const { token } = await raceAbort(ctx.tokens.get(key, fetch), req.signal);
  return {
    req: withAuthorization(req, `Bearer ${token}`),
    cached: wasCached ? { key, token } : undefined,
  };
}

/** A client's token cache key for a challenge and a credential (see {@link tokenKeys}). */
type TokenKeys = (
  challenge: Extract<RegistryChallenge, { scheme: "bearer" }>,
  cred: HostCredential | undefined,
) => string;

/**
 * The token cache key of one client's scope, worked out again only when the challenge or
 * the credential changes: every request asks for it, and the key fingerprints the
 * credential (a SHA-256 of its secrets) and is a JSON text.
 */
function tokenKeys(scope: string): TokenKeys {
  let last: { challenge: object; cred: HostCredential | undefined; key: string } | undefined;
  return (challenge, cred) => {
    if (last?.challenge === challenge && last.cred === cred) return last.key;
    const key = TokenCache.key({ realm: challenge.realm, service: challenge.service, scope, cred });
    last = { challenge, cred, key };
    return key;
  };
}

function withAuthorization(req: HttpRequest, value: string): HttpRequest {
  return { ...req, headers: { ...req.headers, authorization: value } };
}
