/**
 * Local stand-ins for Azure: an App Service managed-identity endpoint (reached through
 * `IDENTITY_ENDPOINT` / `IDENTITY_HEADER`, as `@azure/identity` documents) handing out Entra
 * ID tokens, and a registry's `/oauth2/exchange` trading them for ACR refresh tokens.
 */
import { type FakeServer, sendJson, startFakeServer } from "./http-server.js";

export interface FakeAzure extends FakeServer {
  /** The value `IDENTITY_HEADER` must carry. */
  identityHeader: string;
  tenant: string;
  entraRequests: number;
  exchanges: { service: string; tenant: string | null; grantType: string | null }[];
  /** The `exp` (seconds since the epoch) of the next refresh token. */
  refreshExp: () => number;
  /** The refresh token handed out the n-th time (1-based), JWT-shaped. */
  refreshTokenFor: (n: number) => string;
}

/** A JWT-shaped token with the given claims (unsigned: nothing verifies it). */
export function fakeJwt(claims: Record<string, unknown>): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part(claims)}.c2ln`;
}

export async function startFakeAzure(): Promise<FakeAzure> {
  const state = {
    identityHeader: "fake-identity-header-secret",
    tenant: "72f988bf-0000-0000-0000-00000000beef",
    entraRequests: 0,
    exchanges: [] as FakeAzure["exchanges"],
    refreshExp: () => Math.floor(Date.now() / 1000) + 3 * 3600,
    refreshTokenFor: (n: number) => fakeJwt({ exp: 0, n, secret: `acr-refresh-${n}-zzz` }),
  };
  const issued = new Set<string>();
  const server = await startFakeServer((req, body, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/msi/token") {
      if (req.headers["x-identity-header"] !== state.identityHeader) {
        sendJson(res, { status: 401, body: { error: "bad identity header" } });
        return;
      }
      state.entraRequests++;
      const token = fakeJwt({
        tid: state.tenant,
        aud: url.searchParams.get("resource"),
        n: state.entraRequests,
      });
      issued.add(token);
      sendJson(res, {
        status: 200,
        body: {
          access_token: token,
          expires_on: String(Math.floor(Date.now() / 1000) + 3600),
          resource: url.searchParams.get("resource"),
          token_type: "Bearer",
          client_id: "00000000-1111-2222-3333-444444444444",
        },
      });
      return;
    }
    if (url.pathname === "/oauth2/exchange" && req.method === "POST") {
      const form = new URLSearchParams(body);
      const aad = form.get("access_token") ?? "";
      if (form.get("grant_type") !== "access_token" || !issued.has(aad)) {
        sendJson(res, { status: 401, body: { errors: [{ code: "UNAUTHORIZED" }] } });
        return;
      }
      state.exchanges.push({
        service: form.get("service") ?? "",
        tenant: form.get("tenant"),
        grantType: form.get("grant_type"),
      });
      const n = state.exchanges.length;
      sendJson(res, {
        status: 200,
        body: {
          refresh_token: fakeJwt({ exp: state.refreshExp(), n, secret: `acr-refresh-${n}-zzz` }),
        },
      });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  return Object.assign(state, server);
}
