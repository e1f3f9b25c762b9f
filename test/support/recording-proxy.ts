/**
 * A small reverse proxy in front of the real registry so that tests can count exactly what the
 * registry was asked (method, path, query, status, whether Authorization was sent), inject
 * faults, and paginate `tags/list` the way distribution 3, GHCR or Quay do (2.8 ignores `n`).
 */
import {
  createServer as createHttpServer,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from "node:http";
import {
  createServer as createHttpsServer,
  Agent as HttpsAgent,
  request as httpsRequest,
} from "node:https";
import {
  applyFault,
  type FaultHook,
  type FaultResponse,
  sendShaped,
  shapesBody,
} from "./faults.js";

/** One request the proxy received, and how it was answered. */
export interface RecordedRequest {
  method: string;
  /** The path without the query, e.g. `/v2/app/manifests/latest`. */
  path: string;
  query: URLSearchParams;
  /** Path and query as sent. */
  url: string;
  /** The request headers as received (Authorization included). */
  headers: IncomingHttpHeaders;
  hasAuthorization: boolean;
  /** `basic`, `bearer`, ... (lower case) when Authorization was sent. */
  authScheme: string | undefined;
  /** The status answered; 0 while the answer is not yet started (or the connection was dropped). */
  status: number;
  responseHeaders: OutgoingHttpHeaders;
  /** Whether a fault hook or the pagination mode answered instead of the registry. */
  injected: boolean;
  at: number;
}

/** `tags/list` pagination done by the proxy: `n`, `last` and `Link: <...>; rel="next"`. */
export interface PaginationOptions {
  /** Page size when the client does not send `n` (default 100). */
  defaultPageSize?: number;
  /** Largest page served whatever `n` asks (default: no limit). */
  maxPageSize?: number;
  /** `Link` target as a path (default) or an absolute URL. */
  linkStyle?: "relative" | "absolute";
}

export interface RecordingProxyOptions {
  upstream: { host: string; port: number; tls?: { ca: string } | undefined };
  /** Serve HTTPS with this certificate. */
  tls?: { certPem: string; keyPem: string } | undefined;
}

/** A running recording proxy. */
export interface RecordingProxy {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  readonly port: number;
  readonly url: string;
  requests(): RecordedRequest[];
  resetRequests(): void;
  setFault(hook: FaultHook | undefined): void;
  /** Turns pagination on (options) or off (false). */
  setPagination(pagination: PaginationOptions | false): void;
  /**
   * TCP connections accepted so far, and how many of them failed before a request could be
   * read (e.g. TLS spoken to the plain-HTTP proxy, or plain HTTP to the HTTPS one).
   */
  connections(): { accepted: number; failed: number };
  stop(): Promise<void>;
}

const TAGS_LIST = /^\/v2\/(.+)\/tags\/list$/;

/** One request the proxy sends upstream. */
interface Forwarding {
  req: { method?: string | undefined; headers: IncomingHttpHeaders };
  /** Path and query upstream. */
  path: string;
  onResponse: (up: IncomingMessage) => void;
  onError: (err: Error) => void;
}

/** A tag listing the proxy answers a page of itself. */
interface Paging {
  req: IncomingMessage;
  res: ServerResponse;
  record: RecordedRequest;
  /** The repository. */
  name: string;
  query: URLSearchParams;
  pages: PaginationOptions;
}

/** Starts a recording proxy on 127.0.0.1 and a free port. */
export async function startRecordingProxy(opts: RecordingProxyOptions): Promise<RecordingProxy> {
  let recorded: RecordedRequest[] = [];
  let fault: FaultHook | undefined;
  let pagination: PaginationOptions | false = false;
  const upstreamTls = opts.upstream.tls;
  const agent =
    upstreamTls !== undefined
      ? new HttpsAgent({ keepAlive: true, ca: upstreamTls.ca, maxSockets: 64 })
      : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const scheme = opts.tls !== undefined ? "https" : "http";

  const forward = ({ req, path, onResponse, onError }: Forwarding) => {
    const requestFn = upstreamTls !== undefined ? httpsRequest : httpRequest;
    const up = requestFn(
      {
        host: opts.upstream.host,
        port: opts.upstream.port,
        method: req.method,
        path,
        headers: req.headers,
        agent,
        servername: upstreamTls !== undefined ? "localhost" : undefined,
      },
      onResponse,
    );
    up.on("error", onError);
    return up;
  };

  const paginate = ({ req, res, record, name, query, pages }: Paging) => {
    // Always a GET upstream: the page is computed from the full list even for a HEAD.
    const up = forward({
      req: { method: "GET", headers: req.headers },
      path: `/v2/${name}/tags/list`,
      onResponse: (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on("data", (c: Buffer) => chunks.push(c));
        upRes.on("end", () => {
          const body = Buffer.concat(chunks);
          const status = upRes.statusCode ?? 502;
          if (status !== 200) {
            record.status = status;
            record.responseHeaders = upRes.headers;
            res.writeHead(status, upRes.headers);
            res.end(body);
            return;
          }
          let parsed: { name: string; tags: string[] | null };
          try {
            parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
          } catch {
            record.status = 502;
            res.writeHead(502);
            res.end();
            return;
          }
          const all = [...(parsed.tags ?? [])].sort();
          const last = query.get("last");
          const after = last === null ? all : all.filter((t) => t > last);
          const asked = query.get("n");
          let n =
            asked !== null && /^\d+$/.test(asked) ? Number(asked) : (pages.defaultPageSize ?? 100);
          if (pages.maxPageSize !== undefined) n = Math.min(n, pages.maxPageSize);
          const page = after.slice(0, n);
          const headers: OutgoingHttpHeaders = { "content-type": "application/json" };
          const lastOfPage = page[page.length - 1];
          if (after.length > page.length && lastOfPage !== undefined) {
            const target = `/v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(lastOfPage)}`;
            const link =
              pages.linkStyle === "absolute" ? `${scheme}://${req.headers.host}${target}` : target;
            headers.link = `<${link}>; rel="next"`;
          }
          const out = Buffer.from(JSON.stringify({ name: parsed.name, tags: page }));
          headers["content-length"] = String(out.length);
          record.status = 200;
          record.injected = true;
          record.responseHeaders = headers;
          res.writeHead(200, headers);
          res.end(req.method === "HEAD" ? undefined : out);
        });
        upRes.on("error", () => res.destroy());
      },
      onError: () => {
        record.status = 502;
        res.writeHead(502);
        res.end();
      },
    });
    up.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawUrl = req.url ?? "/";
    const url = new URL(rawUrl, "http://proxy.invalid");
    const auth = req.headers.authorization;
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      url: rawUrl,
      headers: req.headers,
      hasAuthorization: auth !== undefined,
      authScheme: auth?.split(" ")[0]?.toLowerCase(),
      status: 0,
      responseHeaders: {},
      injected: false,
      at: Date.now(),
    };
    recorded.push(record);

    let shaping: FaultResponse | undefined;
    if (fault !== undefined) {
      const f = await fault({
        method: record.method,
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
      });
      if (await applyFault(f, res)) {
        record.injected = true;
        record.status = f?.status ?? 0;
        record.responseHeaders = f?.headers ?? {};
        req.resume();
        return;
      }
      if (shapesBody(f)) shaping = f;
    }

    const tags = TAGS_LIST.exec(url.pathname);
    if (pagination !== false && tags !== null && (req.method === "GET" || req.method === "HEAD")) {
      paginate({
        req,
        res,
        record,
        name: tags[1] ?? "",
        query: url.searchParams,
        pages: pagination,
      });
      req.resume();
      return;
    }

    const up = forward({
      req,
      path: rawUrl,
      onResponse: (upRes) => {
        record.status = upRes.statusCode ?? 502;
        record.responseHeaders = upRes.headers;
        if (shaping !== undefined) {
          // The registry's answer, sent as the fault shapes it (dripped, or cut mid-body).
          const how = shaping;
          const chunks: Buffer[] = [];
          upRes.on("data", (c: Buffer) => chunks.push(c));
          upRes.on("end", () => {
            record.injected = true;
            const headers = { ...upRes.headers };
            delete headers["transfer-encoding"];
            sendShaped(
              res,
              { status: upRes.statusCode ?? 502, headers, body: Buffer.concat(chunks) },
              how,
            ).catch(() => res.destroy());
          });
          upRes.on("error", () => res.destroy());
          return;
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        upRes.on("error", () => res.destroy());
      },
      onError: () => {
        if (!res.headersSent) {
          record.status = 502;
          res.writeHead(502);
          res.end();
        } else res.destroy();
      },
    });
    // A client that gives up (timeout tests) must not leave the upstream request hanging.
    res.on("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
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
  let accepted = 0;
  const failedSockets = new WeakSet<object>();
  let failed = 0;
  // One bad connection may raise both tlsClientError and clientError: count sockets once.
  const fail = (socket: object) => {
    if (failedSockets.has(socket)) return;
    failedSockets.add(socket);
    failed++;
  };
  server.on(opts.tls !== undefined ? "secureConnection" : "connection", () => {
    accepted++;
  });
  if (opts.tls !== undefined) {
    server.on("tlsClientError", (_err, socket) => {
      accepted++;
      fail(socket);
    });
  }
  server.on("clientError", (_err, socket) => {
    fail(socket);
    socket.destroy();
  });
  // Registries send large manifests lists of tags; no reason to time out a test's requests.
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("proxy has no port");
  const host = `127.0.0.1:${addr.port}`;

  return {
    host,
    port: addr.port,
    url: `${scheme}://${host}`,
    requests: () => [...recorded],
    resetRequests: () => {
      recorded = [];
    },
    setFault: (hook) => {
      fault = hook;
    },
    setPagination: (p) => {
      pagination = p;
    },
    connections: () => ({ accepted, failed }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
