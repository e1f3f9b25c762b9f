/**
 * A local Entra ID (v2.0 endpoints: OpenID discovery and the client-credentials token grant)
 * and an ACR `/oauth2/exchange`, each its own HTTPS server, so that tests can follow a service
 * principal's secret and the tokens it buys across hosts. Every request is recorded.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { CertFiles } from "../certs.js";
import { fakeJwt } from "./azure.js";
import { sendJson } from "./http-server.js";

/** A request as the server saw it. */
export interface RecordedRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A client-credentials token request, its form fields as sent. */
export interface TokenRequest {
  tenant: string;
  form: Record<string, string>;
  /** 1-based number of the access token handed out, or undefined when refused. */
  issued: number | undefined;
}

export interface AcrExchange {
  service: string;
  tenant: string | null;
  /** The number of the Entra ID access token that was traded in. */
  accessTokenNumber: number;
  /** The number of the refresh token handed out. */
  refreshTokenNumber: number;
}

export interface FakeEntraId {
  /** `https://127.0.0.1:PORT`, the authority host. */
  authorityHost: string;
  /** `https://127.0.0.1:PORT/oauth2/exchange` on the registry's own server. */
  exchangeUrl: string;
  tenant: string;
  clientId: string;
  clientSecret: string;
  /** `expires_in` of the access tokens handed out, in seconds. */
  accessTokenLifetime: number;
  /** Every request the authority received, in order. */
  authorityRequests: RecordedRequest[];
  /** Every request the registry's exchange server received, in order. */
  registryRequests: RecordedRequest[];
  tokenRequests: TokenRequest[];
  exchanges: AcrExchange[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

async function startHttps(
  cert: CertFiles,
  record: RecordedRequest[],
  handler: Handler,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      record.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      try {
        handler(req, body, res);
      } catch (err) {
        res.statusCode = 500;
        res.end(String(err));
      }
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Starts the authority and the exchange server with a certificate for 127.0.0.1. */
export async function startFakeEntraId(cert: CertFiles): Promise<FakeEntraId> {
  const authorityRequests: RecordedRequest[] = [];
  const registryRequests: RecordedRequest[] = [];
  const tokenRequests: TokenRequest[] = [];
  const exchanges: AcrExchange[] = [];
  const accessTokens = new Map<string, number>();
  const state = {
    tenant: "5f1c7a0e-0000-4000-8000-00000000cafe",
    clientId: "3b9e2d41-aaaa-4bbb-8ccc-000000000abc",
    clientSecret: "sp~Secret.of-the_principal~7Qx",
    accessTokenLifetime: 3600,
  };
  let authorityHost = "";

  const authority = await startHttps(cert, authorityRequests, (req, body, res) => {
    const url = new URL(req.url ?? "/", authorityHost);
    const parts = url.pathname.split("/").filter((p) => p !== "");
    const tenant = parts[0] ?? "";
    const rest = parts.slice(1).join("/");
    if (req.method === "GET" && rest === "v2.0/.well-known/openid-configuration") {
      if (tenant !== state.tenant) {
        sendJson(res, {
          status: 400,
          body: { error: "invalid_tenant", error_description: "AADSTS90002" },
        });
        return;
      }
      const base = `${authorityHost}/${tenant}`;
      sendJson(res, {
        status: 200,
        body: {
          issuer: `${base}/v2.0`,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          token_endpoint: `${base}/oauth2/v2.0/token`,
          device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          jwks_uri: `${authorityHost}/${tenant}/discovery/v2.0/keys`,
          response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
          token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt"],
          tenant_region_scope: null,
          cloud_instance_name: "127.0.0.1",
        },
      });
      return;
    }
    if (req.method === "POST" && rest === "oauth2/v2.0/token") {
      const form = Object.fromEntries(new URLSearchParams(body));
      const ok =
        tenant === state.tenant &&
        form.grant_type === "client_credentials" &&
        form.client_id === state.clientId &&
        form.client_secret === state.clientSecret;
      if (!ok) {
        tokenRequests.push({ tenant, form, issued: undefined });
        // The real service's answer to a wrong secret; it never echoes the secret.
        sendJson(res, {
          status: 401,
          body: {
            error: "invalid_client",
            error_description: `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${form.client_id ?? ""}'.`,
            error_codes: [7000215],
          },
        });
        return;
      }
      const n = accessTokens.size + 1;
      const token = fakeJwt({
        aud: (form.scope ?? "").replace(/\/?\.default$/, ""),
        tid: tenant,
        appid: state.clientId,
        n,
        exp: Math.floor(Date.now() / 1000) + state.accessTokenLifetime,
      });
      accessTokens.set(token, n);
      tokenRequests.push({ tenant, form, issued: n });
      sendJson(res, {
        status: 200,
        body: {
          token_type: "Bearer",
          expires_in: state.accessTokenLifetime,
          ext_expires_in: state.accessTokenLifetime,
          access_token: token,
        },
      });
      return;
    }
    sendJson(res, {
      status: 404,
      body: { error: "not_found", error_description: `no ${req.method} ${rest}` },
    });
  });
  authorityHost = authority.url;

  const registry = await startHttps(cert, registryRequests, (req, body, res) => {
    if (req.method !== "POST" || req.url !== "/oauth2/exchange") {
      res.writeHead(404);
      res.end();
      return;
    }
    const form = new URLSearchParams(body);
    const accessTokenNumber = accessTokens.get(form.get("access_token") ?? "");
    if (form.get("grant_type") !== "access_token" || accessTokenNumber === undefined) {
      sendJson(res, {
        status: 401,
        body: { errors: [{ code: "UNAUTHORIZED", message: "invalid token" }] },
      });
      return;
    }
    const refreshTokenNumber = exchanges.length + 1;
    exchanges.push({
      service: form.get("service") ?? "",
      tenant: form.get("tenant"),
      accessTokenNumber,
      refreshTokenNumber,
    });
    sendJson(res, {
      status: 200,
      body: {
        refresh_token: fakeJwt({
          exp: Math.floor(Date.now() / 1000) + 3 * 3600,
          n: refreshTokenNumber,
          secret: `acr-refresh-${refreshTokenNumber}-zzz`,
        }),
      },
    });
  });

  return Object.assign(state, {
    authorityHost,
    exchangeUrl: `${registry.url}/oauth2/exchange`,
    authorityRequests,
    registryRequests,
    tokenRequests,
    exchanges,
    close: async () => {
      await Promise.all([authority.close(), registry.close()]);
    },
  });
}
