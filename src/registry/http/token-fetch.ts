/**
 * Gets a Bearer token from a registry's token realm: `GET realm?service&scope` (Basic
 * credentials when there are any), or the OAuth2 `POST` form with a refresh token
 * (docker's identity token), or with a password when the realm refuses the GET.
 */
import type { HostCredential } from "../credentials/credentials.js";
import { UnauthorizedError } from "../errors.js";
import {
  discard,
  type HttpRequest,
  type HttpResponse,
  readBounded,
  type Transport,
} from "./exchange.js";
import { checkRealm, type HostResolver } from "./realm-policy.js";
import { expectStatus } from "./status.js";

/** Token answers larger than this are refused. */
export const MAX_TOKEN_BODY = 1024 * 1024;
/** The life of a token whose answer gives no `expires_in` (as the token spec says). */
export const DEFAULT_TOKEN_LIFE_MS = 60_000;

/** What to ask for. */
export interface TokenRequest {
  realm: string;
  service: string | undefined;
  scope: string;
  credential: HostCredential | undefined;
  /** The registry host (for error messages and the realm policy). */
  registryHost: string;
  signal?: AbortSignal | undefined;
  /** How the realm's name is resolved for the policy check (default: the system's). */
  resolve?: HostResolver | undefined;
}

/** Fetches one token. */
export async function fetchToken(
  transport: Transport,
  isInsecure: (host: string) => boolean,
  req: TokenRequest,
): Promise<{ token: string; expiresInMs: number }> {
  let realm: URL;
  try {
    realm = new URL(req.realm);
  } catch {
    throw new UnauthorizedError({ message: "token realm is not a URL", host: req.registryHost });
  }
  const checked = await checkRealm(realm, {
    registryHost: req.registryHost,
    isInsecure,
    resolve: req.resolve,
  });
  // Every request to the realm goes to the addresses just checked.
  const pin = checked.pinned ? { pinnedAddresses: checked.pinned.addresses } : {};
  const cred = req.credential;
  if (cred?.identityToken) {
    return parseTokenResponse(
      await postForm({ transport, realm, req, grant: "refresh_token", pin }),
      req,
    );
  }
  const url = new URL(realm.href);
  if (req.service) url.searchParams.set("service", req.service);
  url.searchParams.set("scope", req.scope);
  const headers: Record<string, string> = { accept: "application/json" };
  if (cred?.username !== undefined && cred.password !== undefined) {
    headers.authorization = basicAuthorization(cred.username, cred.password);
  }
  const res = await transport({
    method: "GET",
    url,
    headers,
    signal: req.signal,
    operation: "token fetch",
    bodyLimit: MAX_TOKEN_BODY,
    ...pin,
  });
  if ((res.status === 404 || res.status === 405) && cred?.password !== undefined) {
    await discard(res);
    return parseTokenResponse(
      await postForm({ transport, realm, req, grant: "password", pin }),
      req,
    );
  }
  return parseTokenResponse(res, req);
}

/** `Basic base64(user:password)`. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}

/** The OAuth2 form POST for a token: `grant` says which secret of the credential is sent. */
async function postForm(post: {
  transport: Transport;
  realm: URL;
  req: TokenRequest;
  grant: "refresh_token" | "password";
  pin: Pick<HttpRequest, "pinnedAddresses">;
}): Promise<HttpResponse> {
  const { transport, realm, req, grant, pin } = post;
  const form = new URLSearchParams();
  form.set("grant_type", grant);
  if (req.service) form.set("service", req.service);
  form.set("scope", req.scope);
  form.set("client_id", "regscan");
  const cred = req.credential;
  if (grant === "refresh_token") form.set("refresh_token", cred?.identityToken ?? "");
  else {
    form.set("username", cred?.username ?? "");
    form.set("password", cred?.password ?? "");
  }
  return transport({
    method: "POST",
    url: realm,
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: form.toString(),
    signal: req.signal,
    operation: "token fetch (POST)",
    ...pin,
  });
}

async function parseTokenResponse(
  res: HttpResponse,
  req: TokenRequest,
): Promise<{ token: string; expiresInMs: number }> {
  // The token server's own 401 means the credentials were refused.
  await expectStatus(res, 200, { host: req.registryHost });
  const body = await readBounded(res, {
    limit: MAX_TOKEN_BODY,
    what: "token answer",
    ctx: {
      host: req.registryHost,
    },
  });
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    json = undefined;
  }
  const obj = typeof json === "object" && json !== null ? (json as Record<string, unknown>) : {};
  const token = typeof obj.token === "string" && obj.token ? obj.token : obj.access_token;
  if (typeof token !== "string" || token === "") {
    throw new UnauthorizedError({
      message: "token realm answered without a token",
      host: req.registryHost,
    });
  }
  const expiresIn =
    typeof obj.expires_in === "number" && obj.expires_in > 0
      ? obj.expires_in * 1000
      : DEFAULT_TOKEN_LIFE_MS;
  return { token, expiresInMs: expiresIn };
}
