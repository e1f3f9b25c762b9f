/**
 * The harness's own Docker token server: `GET /token` (Docker token specification) and the
 * OAuth2 `POST /token` form, Basic credentials checked against its users, ES256 JWTs with an
 * `x5c` header that distribution 2.8 verifies against the test CA. It records every request.
 */
import { randomBytes, randomUUID, sign } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { CertFiles } from "./certs.js";
import { applyFault, type FaultHook } from "./faults.js";

export interface TokenServerOptions {
  /** username -> password. Every user gets every action asked for on every repository. */
  users: Record<string, string>;
  /** The registry's `service` (the JWT `aud`). */
  service: string;
  /** The JWT `iss`; the registry's `auth.token.issuer`. */
  issuer: string;
  /** Signs the tokens; its certificate goes into the `x5c` header. */
  signer: CertFiles;
  /** Anonymous requests get `pull` (default false: anonymous gets a token with no access). */
  anonymousPull?: boolean | undefined;
  /** `expires_in` of issued tokens, in seconds (default 300). */
  expiresInSeconds?: number | undefined;
  /** Serve HTTPS with this certificate instead of plain HTTP. */
  tls?: { certFile: string; keyFile: string; certPem: string; keyPem: string } | undefined;
  /** Decides the actions granted; default: see `users` and `anonymousPull`. */
  authorize?: (subject: string | undefined, scope: ParsedScope) => string[];
}

/** A parsed `scope` entry, e.g. `repository:team/app:pull,push`. */
export interface ParsedScope {
  type: string;
  name: string;
  actions: string[];
}

/** One request the token server received. */
export interface TokenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The form fields of a POST, empty for GET. */
  form: URLSearchParams;
  service: string | undefined;
  /** Every scope asked for (several `scope` params, or a space-separated POST `scope`). */
  scopes: string[];
  /** `password` or `refresh_token` for POST; undefined for GET. */
  grantType: string | undefined;
  /** The user the request authenticated as, if it did. */
  username: string | undefined;
  hasAuthorization: boolean;
  status: number;
  /** The access token issued, if one was. */
  token: string | undefined;
  refreshToken: string | undefined;
  at: number;
}

/** A running token server. */
export interface TokenServer {
  /** Base URL, e.g. `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The realm to put in the registry's challenge: `${url}/token`. */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  requests(): TokenRequest[];
  resetRequests(): void;
  /** Injects faults (e.g. 500s) in front of the token endpoint; undefined removes the hook. */
  setFault(hook: FaultHook | undefined): void;
  /** Changes `expires_in` for tokens issued from now on. */
  setExpiresIn(seconds: number): void;
  /** Leaves `expires_in` out of answers (clients must then assume 60 s). */
  setOmitExpiresIn(omit: boolean): void;
  /** Refuses `GET /token` with 404 so clients must use the OAuth2 POST form. */
  setGetDisabled(disabled: boolean): void;
  /** Signs a token for arbitrary claims (for tests of rejected tokens). */
  signToken(claims: Record<string, unknown>): string;
  stop(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

/** Splits a scope string; names may hold `:` (e.g. a port), actions come after the last. */
export function parseScope(scope: string): ParsedScope | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(",")
      .filter((a) => a !== ""),
  };
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error("token request body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function basicCredentials(header: string | undefined): { user: string; pass: string } | undefined {
  if (header === undefined) return undefined;
  const m = /^Basic\s+(\S+)$/i.exec(header);
  if (m === null) return undefined;
  const decoded = Buffer.from(m[1] ?? "", "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}

/** Starts a token server on 127.0.0.1 and a free port. */
export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  let expiresIn = opts.expiresInSeconds ?? 300;
  let omitExpiresIn = false;
  let getDisabled = false;
  let fault: FaultHook | undefined;
  let recorded: TokenRequest[] = [];
  const refreshTokens = new Map<string, string>();

  const signToken = (claims: Record<string, unknown>): string => {
    const header = { typ: "JWT", alg: "ES256", x5c: [opts.signer.derBase64] };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(input), {
      key: opts.signer.keyPem,
      dsaEncoding: "ieee-p1363",
    });
    return `${input}.${base64url(signature)}`;
  };

  const grant = (subject: string | undefined, scopes: string[]) => {
    const access: ParsedScope[] = [];
    for (const s of scopes) {
      const parsed = parseScope(s);
      if (parsed === undefined) continue;
      let actions: string[];
      if (opts.authorize !== undefined) actions = opts.authorize(subject, parsed);
      else if (subject !== undefined) actions = parsed.actions;
      else if (opts.anonymousPull === true && parsed.type === "repository") {
        actions = parsed.actions.filter((a) => a === "pull");
      } else actions = [];
      access.push({ type: parsed.type, name: parsed.name, actions });
    }
    return access;
  };

  const issue = (subject: string | undefined, service: string, scopes: string[]) => {
    const now = Math.floor(Date.now() / 1000);
    const token = signToken({
      iss: opts.issuer,
      sub: subject ?? "",
      aud: service,
      exp: now + expiresIn,
      nbf: now - 5,
      iat: now,
      jti: randomUUID(),
      access: grant(subject, scopes),
    });
    return { token, issuedAt: new Date(now * 1000).toISOString() };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://token.invalid");
    const record: TokenRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      form: new URLSearchParams(),
      service: undefined,
      scopes: [],
      grantType: undefined,
      username: undefined,
      hasAuthorization: req.headers.authorization !== undefined,
      status: 0,
      token: undefined,
      refreshToken: undefined,
      at: Date.now(),
    };
    recorded.push(record);
    const send = (status: number, body: object, headers: Record<string, string> = {}) => {
      record.status = status;
      const bytes = Buffer.from(JSON.stringify(body));
      res.writeHead(status, {
        "content-type": "application/json",
        "content-length": String(bytes.length),
        ...headers,
      });
      res.end(bytes);
    };

    if (fault !== undefined) {
      const f = await fault({
        method: record.method,
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
      });
      if (await applyFault(f, res)) {
        record.status = f?.status ?? 0;
        return;
      }
    }
    if (url.pathname !== "/token") {
      send(404, { errors: [{ code: "NOT_FOUND", message: "no such endpoint" }] });
      return;
    }

    const answer = (subject: string | undefined, service: string, scopes: string[]) => {
      const { token, issuedAt } = issue(subject, service, scopes);
      record.token = token;
      const body: Record<string, unknown> = { token, access_token: token, issued_at: issuedAt };
      if (!omitExpiresIn) body.expires_in = expiresIn;
      return body;
    };
    const newRefreshToken = (user: string) => {
      const rt = randomBytes(24).toString("base64url");
      refreshTokens.set(rt, user);
      record.refreshToken = rt;
      return rt;
    };

    if (req.method === "GET") {
      if (getDisabled) {
        send(404, { errors: [{ code: "UNSUPPORTED", message: "use POST" }] });
        return;
      }
      record.service = url.searchParams.get("service") ?? undefined;
      record.scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" "));
      let subject: string | undefined;
      if (req.headers.authorization !== undefined) {
        const creds = basicCredentials(req.headers.authorization);
        if (creds === undefined || opts.users[creds.user] !== creds.pass) {
          send(
            401,
            { errors: [{ code: "UNAUTHORIZED", message: "invalid username or password" }] },
            { "www-authenticate": 'Basic realm="regscan-test-token"' },
          );
          return;
        }
        subject = creds.user;
      }
      record.username = subject;
      const body = answer(subject, record.service ?? opts.service, record.scopes);
      if (subject !== undefined && url.searchParams.get("offline_token") === "true") {
        body.refresh_token = newRefreshToken(subject);
      }
      send(200, body);
      return;
    }

    if (req.method === "POST") {
      let form: URLSearchParams;
      try {
        form = new URLSearchParams(await readBody(req));
      } catch {
        send(400, { error: "invalid_request" });
        return;
      }
      record.form = form;
      record.grantType = form.get("grant_type") ?? undefined;
      record.service = form.get("service") ?? undefined;
      record.scopes = (form.get("scope") ?? "").split(" ").filter((s) => s !== "");
      const service = record.service ?? opts.service;
      if (record.grantType === "password") {
        const user = form.get("username") ?? "";
        if (opts.users[user] === undefined || opts.users[user] !== form.get("password")) {
          send(401, { error: "invalid_grant", error_description: "invalid credentials" });
          return;
        }
        record.username = user;
        const body = answer(user, service, record.scopes);
        delete body.token;
        body.scope = record.scopes.join(" ");
        if (form.get("access_type") === "offline") body.refresh_token = newRefreshToken(user);
        send(200, body);
        return;
      }
      if (record.grantType === "refresh_token") {
        const user = refreshTokens.get(form.get("refresh_token") ?? "");
        if (user === undefined) {
          send(401, { error: "invalid_grant", error_description: "unknown refresh token" });
          return;
        }
        record.username = user;
        const body = answer(user, service, record.scopes);
        delete body.token;
        body.scope = record.scopes.join(" ");
        send(200, body);
        return;
      }
      send(400, { error: "unsupported_grant_type" });
      return;
    }
    send(405, { errors: [{ code: "UNSUPPORTED", message: "method not allowed" }] });
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
  const server: Server =
    opts.tls !== undefined
      ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, listener)
      : createHttpServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("token server has no port");
  const url = `${opts.tls !== undefined ? "https" : "http"}://127.0.0.1:${addr.port}`;

  return {
    url,
    realm: `${url}/token`,
    service: opts.service,
    issuer: opts.issuer,
    requests: () => [...recorded],
    resetRequests: () => {
      recorded = [];
    },
    setFault: (hook) => {
      fault = hook;
    },
    setExpiresIn: (seconds) => {
      expiresIn = seconds;
    },
    setOmitExpiresIn: (omit) => {
      omitExpiresIn = omit;
    },
    setGetDisabled: (disabled) => {
      getDisabled = disabled;
    },
    signToken,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
