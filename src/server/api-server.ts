/**
 * regscan's HTTP API on node:http: repositories, images, priority refresh, tag events,
 * Prometheus metrics and health. Answers are JSON; errors carry a stable `code` and never a
 * stack trace. The `/v1` routes may require a bearer token and are rate-bounded per client.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Counter, type Registry as MetricsRegistry } from "prom-client";
import { CachedFetchError, ImageExcludedError } from "../cache/errors.js";
import { RegscanError } from "../errors.js";
import { type ImageName, type ImageRef, parseImageName, parseImageRef } from "../image/ref.js";
import type { Registry } from "../registry/registry.js";
import { ApiError } from "./api-error.js";
import { BearerToken } from "./bearer-token.js";
import { ClientRateLimiter } from "./client-rate-limiter.js";
import { EventStreams } from "./event-stream.js";
import { imageJson, repositoryJson, statusJson } from "./json-forms.js";
import { matchRoute } from "./routes.js";
import type { WarmerControl } from "./warmer-control.js";

/** Everything the API server answers from. */
export interface ApiServerOptions {
  /** Where repository metadata and images are read (the Cache). */
  registry: Registry;
  /** The warmer's control surface. */
  warmer: WarmerControl;
  /** Metrics served on `/metrics`. */
  metrics: MetricsRegistry;
  /** Resolves when the store answers; rejects otherwise (for `/readyz`). */
  ready: (signal: AbortSignal) => Promise<void>;
  logger: Logger;
  /** When set, `/v1` requires `Authorization: Bearer <apiToken>`. */
  apiToken?: string;
  /** Largest request body accepted (default 64 KiB). */
  maxBodyBytes?: number;
  /** Per-client rate bound of `/v1` (default 50/s, burst 100). */
  rateLimit?: { rps: number; burst: number };
  /** Seconds a client is told to wait for a repository not yet cached (default 5). */
  notCachedRetryAfter?: number;
  /** Most concurrent event streams (default 100). */
  maxEventStreams?: number;
  /** Milliseconds between keep-alive comments on event streams (default 15 s). */
  eventHeartbeatMs?: number;
}

const MAX_URL_LENGTH = 8192;

/** The API server; `listen()` then `close()`. */
export class ApiServer {
  readonly server: Server;
  private readonly token: BearerToken | undefined;
  private readonly limiter: ClientRateLimiter;
  private readonly events: EventStreams;
  private readonly requests: Counter<"route" | "status">;

  constructor(private readonly opts: ApiServerOptions) {
    this.token = opts.apiToken ? new BearerToken(opts.apiToken) : undefined;
    this.limiter = new ClientRateLimiter(opts.rateLimit ?? { rps: 50, burst: 100 });
    this.events = new EventStreams(opts.warmer, {
      maxClients: opts.maxEventStreams ?? 100,
      ...(opts.eventHeartbeatMs === undefined ? {} : { heartbeatMs: opts.eventHeartbeatMs }),
    });
    this.requests =
      (opts.metrics.getSingleMetric("regscan_api_requests_total") as
        | Counter<"route" | "status">
        | undefined) ??
      new Counter({
        name: "regscan_api_requests_total",
        help: "HTTP API requests by route and status",
        labelNames: ["route", "status"],
        registers: [opts.metrics],
      });
    this.server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.keepAliveTimeout = 5_000;
    this.server.maxHeadersCount = 100;
  }

  /** Starts listening on `host:port`; resolves to the address actually bound. */
  listen(address: string): Promise<AddressInfo> {
    const { host, port } = splitListenAddress(address);
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen({ host, port }, () => {
        this.server.off("error", onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Stops accepting connections, ends event streams, lets requests in flight finish for up to
   * `graceMs`, then closes whatever is left.
   */
  async close(graceMs: number): Promise<void> {
    if (!this.server.listening) return;
    this.events.closeAll();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The label stays "unknown" for paths that match no endpoint, keeping its values few.
    const label = { route: "unknown" };
    // "close" comes for every response, also a stream the client dropped (which never
    // finishes), so that each request is counted once with the status it was sent.
    res.once("close", () =>
      this.requests.inc({ route: label.route, status: String(res.statusCode) }),
    );
    try {
      const url = req.url ?? "/";
      if (url.length > MAX_URL_LENGTH)
        throw new ApiError(414, "URI_TOO_LONG", "request URL too long");
      const q = url.indexOf("?");
      const path = q >= 0 ? url.slice(0, q) : url;
      const query = new URLSearchParams(q >= 0 ? url.slice(q + 1) : "");
      await this.route(req, res, path, query, label);
    } catch (err) {
      this.fail(res, err);
    }
  }

  private async route(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: URLSearchParams,
    label: { route: string },
  ): Promise<void> {
    const method = req.method ?? "GET";
    const isV1 = path === "/v1" || path.startsWith("/v1/");
    const match = matchRoute(method, path);
    if (match !== undefined) label.route = match.route;
    if (isV1) {
      // Before the token check, so that guessing tokens is rate-bounded too.
      const wait = this.limiter.take(req.socket.remoteAddress ?? "unknown");
      if (wait > 0) {
        throw new ApiError(429, "TOO_MANY_REQUESTS", "too many requests; slow down", {
          "retry-after": String(wait),
        });
      }
    }
    if (match === undefined)
      throw new ApiError(404, "NOT_FOUND", `no such endpoint: ${method} ${safePath(path)}`);
    if (method === "OPTIONS") {
      res.writeHead(204, { allow: [...match.methods, "OPTIONS"].join(", ") });
      res.end();
      return;
    }
    if (isV1 && this.token && !this.token.accepts(req.headers.authorization)) {
      throw new ApiError(401, "UNAUTHORIZED", "a valid bearer token is required", {
        "www-authenticate": 'Bearer realm="regscan"',
      });
    }
    if (!match.methods.includes(method)) {
      throw new ApiError(405, "METHOD_NOT_ALLOWED", `method ${method} not allowed here`, {
        allow: match.methods.join(", "),
      });
    }
    if (isV1) await this.readBody(req);

    switch (match.route) {
      case "healthz":
        send(res, 200, { status: "ok" });
        break;
      case "readyz":
        await this.readiness(res);
        break;
      case "metrics": {
        const body = await this.opts.metrics.metrics();
        res.writeHead(200, {
          "content-type": this.opts.metrics.contentType,
          "cache-control": "no-store",
        });
        res.end(body);
        break;
      }
      case "repositories": {
        const statuses = await this.opts.warmer.statuses();
        send(res, 200, { repositories: statuses.map(statusJson) });
        break;
      }
      case "events": {
        if (!this.events.hasRoom()) {
          throw new ApiError(
            503,
            "TOO_MANY_STREAMS",
            "too many event streams open; try again later",
            { "retry-after": "30" },
          );
        }
        const repo = query.get("repository");
        this.events.attach(res, repo ? (await this.watchedName(repo)).toString() : undefined);
        break;
      }
      case "refresh": {
        const name = await this.watchedName(match.rest.slice(0, -"/refresh".length));
        this.opts.warmer.prioritize(name);
        send(res, 202, { name: name.toString(), status: "refresh queued" });
        break;
      }
      case "repository": {
        const name = await this.watchedName(match.rest);
        const meta = await this.answer(
          () => this.opts.registry.getImageRepositoryMetadata(name, { signal: abortOnClose(res) }),
          name.toString(),
        );
        send(res, 200, repositoryJson(name.toString(), meta));
        break;
      }
      case "image": {
        const ref = withDefaultTag(parseRef(match.rest));
        await this.watchedName(ref.name.toString());
        const info = await this.answer(
          () => this.opts.registry.getImage(ref, { signal: abortOnClose(res) }),
          ref.toString(),
        );
        send(res, 200, imageJson(info));
        break;
      }
    }
  }

  private async readiness(res: ServerResponse): Promise<void> {
    const signal = AbortSignal.timeout(2_000);
    try {
      await this.opts.ready(signal);
      send(res, 200, { status: "ready" });
    } catch (err) {
      this.opts.logger.warn(
        { err: errorSummary(err) },
        "readiness check failed: the store does not answer",
      );
      send(res, 503, {
        status: "not ready",
        code: "STORE_UNAVAILABLE",
        message: "the store does not answer",
      });
    }
  }

  /** Reads and discards a request body, refusing one over the bound. */
  private async readBody(req: IncomingMessage): Promise<void> {
    const max = this.opts.maxBodyBytes ?? 65_536;
    // The connection is closed after a 413 so that the rest of the body is never read.
    const tooLarge = () =>
      new ApiError(413, "PAYLOAD_TOO_LARGE", `request body over ${max} bytes`, {
        connection: "close",
      });
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > max) throw tooLarge();
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > max) throw tooLarge();
    }
  }

  private async watchedName(encoded: string): Promise<ImageName> {
    const text = decode(encoded);
    let name: ImageName;
    try {
      name = parseImageName(text);
    } catch (err) {
      throw asBadRequest(err, text);
    }
    if (!(await this.opts.warmer.isWatched(name))) {
      throw new ApiError(
        404,
        "NOT_WATCHED",
        `repository ${name.toString()} is not watched by this regscan`,
      );
    }
    return name;
  }

  /** Runs a cache read and turns its errors into API answers. */
  private async answer<T>(read: () => Promise<T>, what: string): Promise<T> {
    try {
      return await read();
    } catch (err) {
      if (!(err instanceof RegscanError)) throw err;
      if (err instanceof CachedFetchError) {
        // The repository's last error: it has never been fetched successfully.
        throw new ApiError(502, err.code, err.message);
      }
      if (err instanceof ImageExcludedError) {
        throw new ApiError(404, err.code, err.message, {}, { excludedReason: err.excludedReason });
      }
      switch (err.code) {
        case "NOT_CACHED":
          throw new ApiError(503, "NOT_CACHED", err.message, {
            "retry-after": String(this.opts.notCachedRetryAfter ?? 5),
          });
        case "UNKNOWN_TAG":
        case "UNKNOWN_DIGEST":
        case "MANIFEST_UNKNOWN":
        case "NAME_UNKNOWN":
          throw new ApiError(404, err.code, err.message);
        default:
          throw new ApiError(502, err.code, `${what}: ${err.message}`);
      }
    }
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof ApiError) {
      send(res, err.status, { code: err.code, message: err.message, ...err.details }, err.headers);
      return;
    }
    this.opts.logger.error({ err: errorSummary(err) }, "API request failed");
    send(res, 500, { code: "INTERNAL", message: "internal error; see the server's log" });
  }
}

/** Splits `host:port`, `:port` or `[v6]:port`. */
export function splitListenAddress(address: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  if (!m)
    throw new ApiError(
      500,
      "INVALID_LISTEN",
      `invalid listen address ${JSON.stringify(address)}: expected host:port`,
    );
  const host = m[1] ?? m[2];
  return { host: host === "" ? undefined : host, port: Number(m[3]) };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  // A final newline, so that `curl` output does not run into the shell prompt.
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ApiError(400, "BAD_ENCODING", "the path is not valid percent-encoding");
  }
}

function parseRef(encoded: string): ImageRef {
  const text = decode(encoded);
  try {
    return parseImageRef(text);
  } catch (err) {
    throw asBadRequest(err, text);
  }
}

function withDefaultTag(ref: ImageRef): ImageRef {
  return ref.tag === undefined && ref.digest === undefined ? ref.name.withTag("latest") : ref;
}

function asBadRequest(err: unknown, text: string): ApiError {
  const message =
    err instanceof RegscanError ? err.message : `invalid image reference ${JSON.stringify(text)}`;
  const code = err instanceof RegscanError ? err.code : "INVALID_IMAGE_REF";
  return new ApiError(400, code, message);
}

function abortOnClose(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once("close", () => controller.abort());
  return AbortSignal.any([controller.signal, AbortSignal.timeout(30_000)]);
}

function safePath(path: string): string {
  return JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}...` : path);
}

function errorSummary(err: unknown): { name: string; code?: string; message: string } {
  if (err instanceof Error) {
    return { name: err.name, code: (err as { code?: string }).code, message: err.message };
  }
  return { name: "unknown", message: String(err) };
}
