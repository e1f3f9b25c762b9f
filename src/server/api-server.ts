/**
 * regscan's HTTP API on node:http: repositories, images, priority refresh, tag events,
 * Prometheus metrics and health. Answers are JSON; errors carry a stable `code` and never a
 * stack trace. The `/v1` routes may require a bearer token and are rate-bounded per client.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Counter, Gauge, type Registry as MetricsRegistry } from "prom-client";
import { type OperationOptions, raceAbort } from "../abort.js";
import { CachedFetchError, ImageExcludedError, NotCachedError } from "../cache/errors.js";
import { SharedTimeout } from "../cache/shared-timeout.js";
import { knownErrorCode, RegscanError } from "../errors.js";
import { EventLoopTurns } from "../event-loop-turns.js";
import { type ImageName, type ImageRef, parseImageName, parseImageRef } from "../image/ref.js";
import type { Registry } from "../registry/registry.js";
import { type RepositoryStream, streamOfMetadata } from "../registry/repository-stream.js";
import { ApiError } from "./api-error.js";
import { BearerToken } from "./bearer-token.js";
import { ClientRateLimiter } from "./client-rate-limiter.js";
import { ConnectionLimiter } from "./connection-limiter.js";
import { EventStreams } from "./event-stream.js";
import { acceptsGzip, type GzipAnswer, unzipBody } from "./gzip-answer.js";
import { imageJson, staleness, statusListBody } from "./json-forms.js";
import type { RecordNoticeSource } from "./record-notices.js";
import {
  buildRepositoryAnswer,
  type RepositoryJsonLayout,
  type RepositoryText,
  repositoryJsonPieces,
  textBytes,
} from "./repository-answer.js";
import {
  isGzip,
  isOversized,
  isText,
  type MadeAnswer,
  OVERSIZED,
  type RepositoryAnswer,
  RepositoryJsonCache,
  type StoredRepositoryState,
} from "./repository-json-cache.js";
import { matchRoute } from "./routes.js";
import type { FetchedAnswer, SharedAnswer, SharedAnswers } from "./shared-answers.js";
import type { WarmerControl } from "./warmer-control.js";
import type { WebhookEndpoint } from "./webhook-endpoint.js";
import { WorkGate } from "./work-gate.js";

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
  apiToken?: string | undefined;
  /** Largest request body accepted (default 64 KiB). */
  maxBodyBytes?: number | undefined;
  /** Per-client rate bound of `/v1` (default 50/s, burst 100). */
  rateLimit?: { rps: number; burst: number } | undefined;
  /** Seconds a client is told to wait for a repository not yet cached (default 5). */
  notCachedRetryAfter?: number | undefined;
  /** Most concurrent event streams (default 100). */
  maxEventStreams?: number | undefined;
  /** Milliseconds between keep-alive comments on event streams (default 15 s). */
  eventHeartbeatMs?: number | undefined;
  /**
   * What a repository's stored record says (its version, which changes whenever a warmer
   * rewrites it, and when its tags were last listed), or undefined when there is none.
   * With it, a repository's JSON is built once per version and served from a cache, and
   * `x-regscan-stale-seconds` is the cluster's view (any replica's last listing), not only
   * this replica's; without it, the JSON is built for every request.
   */
  repositoryState?:
    | ((name: ImageName, signal: AbortSignal) => Promise<StoredRepositoryState | undefined>)
    | undefined;
  /**
   * Bytes of repository answers kept (default 8 MiB): a larger answer is never held whole
   * but written to the socket as it is produced.
   */
  repositoryCacheBytes?: number | undefined;
  /**
   * Answers shared with the other replicas through the store (see {@link SharedAnswers}):
   * with it, an answer this replica does not keep is read from there before it is built,
   * and one built is written there. Needs `repositoryState` (answers go by its version).
   */
  sharedAnswers?: SharedAnswers | undefined;
  /**
   * Notices of record writes (see record-notices.ts; closed with the server): while they
   * arrive, a repository's stored state is shared for {@link NOTICED_STATE_TTL_MS} instead
   * of a second, and forgotten when its record is written.
   */
  recordNotices?: RecordNoticeSource | undefined;
  /** Connection caps and timeouts (see {@link ServerLimits}). */
  limits?: Partial<ServerLimits> | undefined;
  /** The registry webhook receivers; without them `/v1/webhooks/...` is 404. */
  webhooks?: WebhookEndpoint | undefined;
}

/** How much the server takes on at once, and how long it waits for clients. */
export interface ServerLimits {
  /** Most connections open at once, all clients together (default 1,024). */
  maxConnections: number;
  /** Most connections open at once from one client address (default 64). */
  maxConnectionsPerClient: number;
  /** Milliseconds a client has to send a request's headers (default 10 s). */
  headersTimeoutMs: number;
  /** Milliseconds a client has to send a whole request (default 30 s). */
  requestTimeoutMs: number;
  /** Milliseconds an idle keep-alive connection is kept open between requests (default 5 s). */
  keepAliveTimeoutMs: number;
  /** Milliseconds without any traffic before a connection is closed (default 60 s). */
  socketIdleTimeoutMs: number;
  /** Expensive answers (a whole repository's JSON) built at once (default 4). */
  heavyConcurrency: number;
  /** Expensive requests waiting for a turn; more get 503 `SERVER_BUSY` (default 32). */
  heavyQueue: number;
  /**
   * Tags of small repositories' answers (1,000 tags or fewer each) built at once (default
   * 8,192: 81 answers of 100 tags); more wait, as many as there are connections.
   */
  smallAnswerTags: number;
}

/** The defaults of {@link ServerLimits}. */
export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = {
  maxConnections: 1024,
  maxConnectionsPerClient: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  socketIdleTimeoutMs: 60_000,
  heavyConcurrency: 4,
  heavyQueue: 32,
  smallAnswerTags: 8_192,
};

/** Bytes of a large answer handed to the socket at once. */
const LARGE_BODY_SLICE = 64 * 1024;

/**
 * How long a repository's stored state is shared while record-write notices arrive: a write
 * whose notice was lost (the publisher's connection failed) shows within this, not the
 * second; a tag event still makes the next read read the record at once.
 */
export const NOTICED_STATE_TTL_MS = 30_000;

/** Tags of a repository whose answer is built without waiting for a heavy-work turn. */
const SMALL_REPOSITORY_TAGS = 1_000;
/**
 * A repository answer takes one heavy-work turn per this many tags (all of them from four
 * times it): its build holds its body (about 300 bytes a tag) until it is written, and
 * reading and serialising a slice of tags takes CPU in proportion.
 */
const TAGS_PER_HEAVY_TURN = 5_000;

/** How long one cache read for an answer may take. */
const READ_TIMEOUT_MS = 30_000;
/** Reads that may wait on one shared deadline at once before Node warns of a leak. */
const READ_DEADLINE_LISTENERS = 10_000;
/**
 * How long an answer too large to hold may take to write, reads included (75 MB to a reader
 * on a slow link): past it the answer is cut off and its heavy-work turn freed.
 */
const STREAM_TIMEOUT_MS = 5 * 60_000;

const MAX_URL_LENGTH = 8192;

/**
 * Repository names parsed from request paths, kept by their path text: readers ask for the
 * same few thousand names over and over, and each parse made a tenth of what the API thread
 * allocated per read (bench:scale, 2,000,000 tags). Cleared when full.
 */
const MAX_PARSED_NAMES = 4096;

/** The query of a URL without one (most requests), shared: never changed, only read. */
const NO_QUERY: Pick<URLSearchParams, "get" | "has"> = new URLSearchParams();

/** The API server; `listen()` then `close()`. */
export class ApiServer {
  readonly server: Server;
  readonly #token: BearerToken | undefined;
  readonly #limiter: ClientRateLimiter;
  readonly #events: EventStreams;
  readonly #requests: Counter<"route" | "status">;
  /** Repository answers by where they came from (`kept`, `stored`, `built`, `shared`). */
  readonly #answers: Counter<"source">;
  readonly #connections: ConnectionLimiter;
  readonly #heavy: WorkGate;
  readonly #smallBuilds: WorkGate;
  readonly #repositoryBodies: RepositoryJsonCache;
  /** See {@link MAX_PARSED_NAMES}. */
  readonly #parsedNames = new Map<string, ImageName>();
  /**
   * The store reads' deadlines, one signal shared by the reads started within a second: a
   * signal per read kept hundreds of timers and signals a second alive for 30 s, and built a
   * TimeoutError for each as it fired (bench:scale at 200,000 tags, 50 readers: a tenth of
   * the API thread's busy time went to signals and the garbage they left).
   */
  readonly #readDeadlines = new SharedTimeout({
    timeoutMs: READ_TIMEOUT_MS,
    slackMs: 1_000,
    listeners: READ_DEADLINE_LISTENERS,
  });
  readonly #stopForgetting: () => void;
  readonly #stopNotices: () => void;

  readonly #opts: ApiServerOptions;

  constructor(opts: ApiServerOptions) {
    this.#opts = opts;
    const limits = { ...DEFAULT_SERVER_LIMITS, ...opts.limits };
    this.#token = opts.apiToken ? new BearerToken(opts.apiToken) : undefined;
    this.#repositoryBodies = new RepositoryJsonCache({ maxBytes: opts.repositoryCacheBytes });
    // Tag events (every replica's, with a shared stream) go out once the repository's record
    // is written: the next read of it reads the record again.
    this.#stopForgetting = opts.warmer.subscribe((event) =>
      this.#repositoryBodies.forgetVersion(event.repository),
    );
    this.#stopNotices =
      opts.recordNotices?.subscribe({
        written: (repository) => this.#repositoryBodies.forgetVersion(repository),
        reset: () => this.#repositoryBodies.forgetVersions(),
      }) ?? (() => {});
    this.#limiter = new ClientRateLimiter(opts.rateLimit ?? { rps: 50, burst: 100 });
    this.#events = new EventStreams(opts.warmer, {
      maxClients: opts.maxEventStreams ?? 100,
      heartbeatMs: opts.eventHeartbeatMs,
    });
    this.#requests =
      (opts.metrics.getSingleMetric("regscan_api_requests_total") as
        | Counter<"route" | "status">
        | undefined) ??
      new Counter({
        name: "regscan_api_requests_total",
        help: "HTTP API requests by route and status",
        labelNames: ["route", "status"],
        registers: [opts.metrics],
      });
    this.#answers =
      (opts.metrics.getSingleMetric("regscan_api_repository_answers_total") as
        | Counter<"source">
        | undefined) ??
      new Counter({
        name: "regscan_api_repository_answers_total",
        help: "Repository answers by source: kept (the answer cache), stored (another replica's, through the store), built, or shared (another reader's build)",
        labelNames: ["source"],
        registers: [opts.metrics],
      });
    this.#heavy = new WorkGate({
      concurrency: Math.max(1, limits.heavyConcurrency),
      queue: Math.max(0, limits.heavyQueue),
      retryAfterSeconds: 1,
    });
    // Small answers wait rather than being refused: a reader of many small repositories
    // should be slowed, not told SERVER_BUSY. Each connection waits for one at most.
    this.#smallBuilds = new WorkGate({
      concurrency: Math.max(1, limits.smallAnswerTags),
      queue: Math.max(1, limits.maxConnections),
      retryAfterSeconds: 1,
    });
    this.server = createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // Node checks the two timeouts above only this often (30 s by default), long enough
        // for slow clients to pile up between checks.
        connectionsCheckingInterval: Math.max(
          100,
          Math.min(1_000, limits.headersTimeoutMs / 2, limits.requestTimeoutMs / 2),
        ),
      },
      (req, res) => {
        void this.#handle(req, res);
      },
    );
    // Closes connections with no traffic either way (a client that stopped reading).
    this.server.setTimeout(limits.socketIdleTimeoutMs);
    this.server.maxHeadersCount = 100;
    const refused =
      (opts.metrics.getSingleMetric("regscan_api_connections_refused_total") as
        | Counter<"reason">
        | undefined) ??
      new Counter({
        name: "regscan_api_connections_refused_total",
        help: "API connections closed at once because a connection cap was reached, by cap",
        labelNames: ["reason"],
        registers: [opts.metrics],
      });
    this.#connections = new ConnectionLimiter(
      {
        maxConnections: Math.max(1, limits.maxConnections),
        maxConnectionsPerClient: Math.max(1, limits.maxConnectionsPerClient),
      },
      (reason) => refused.inc({ reason }),
    );
    this.#connections.attach(this.server);
    const connections = this.#connections;
    if (!opts.metrics.getSingleMetric("regscan_api_connections")) {
      new Gauge({
        name: "regscan_api_connections",
        help: "API connections open now",
        registers: [opts.metrics],
        collect() {
          this.set(connections.stats().open);
        },
      });
    }
    const notices = opts.recordNotices;
    if (notices && !opts.metrics.getSingleMetric("regscan_api_record_notices_live")) {
      new Gauge({
        name: "regscan_api_record_notices_live",
        help: "1 while record-write notices arrive (stored states are then kept 30 s), else 0",
        registers: [opts.metrics],
        collect() {
          this.set(notices.live() ? 1 : 0);
        },
      });
    }
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
    this.#stopForgetting();
    this.#stopNotices();
    this.#opts.recordNotices?.close();
    if (!this.server.listening) return;
    this.#events.closeAll();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The label stays "unknown" for paths that match no endpoint, keeping its values few.
    const label = { route: "unknown" };
    // "close" comes for every response, also a stream the client dropped (which never
    // finishes), so that each request is counted once with the status it was sent.
    res.once("close", () =>
      this.#requests.inc({ route: label.route, status: String(res.statusCode) }),
    );
    try {
      const url = req.url ?? "/";
      if (url.length > MAX_URL_LENGTH)
        throw new ApiError({ status: 414, code: "URI_TOO_LONG", message: "request URL too long" });
      const q = url.indexOf("?");
      const path = q >= 0 ? url.slice(0, q) : url;
      const query = q >= 0 ? new URLSearchParams(url.slice(q + 1)) : NO_QUERY;
      await this.#route(req, res, { path, query, label });
    } catch (err) {
      this.#fail(res, err);
    }
  }

  async #route(
    req: IncomingMessage,
    res: ServerResponse,
    {
      path,
      query,
      label,
    }: {
      path: string;
      query: Pick<URLSearchParams, "get" | "has">;
      /** Filled in with the matched route, for the request metrics. */
      label: { route: string };
    },
  ): Promise<void> {
    const method = req.method ?? "GET";
    const match = matchRoute(method, path);
    if (match !== undefined) label.route = match.route;
    if (match?.route === "webhook" && this.#opts.webhooks && method === "POST") {
      // Each receiver checks its own secret and bounds failed attempts per client; a
      // registry's burst of notifications must not meet the API's per-client rate, token
      // or 64 KiB body bound.
      await this.#opts.webhooks.handle(req, res, match.rest);
      return;
    }
    const isV1 = path === "/v1" || path.startsWith("/v1/");
    if (isV1) {
      // Before the token check, so that guessing tokens is rate-bounded too.
      const wait = this.#limiter.take(req.socket.remoteAddress ?? "unknown");
      if (wait > 0) {
        throw new ApiError({
          status: 429,
          code: "TOO_MANY_REQUESTS",
          message: "too many requests; slow down",
          headers: {
            "retry-after": String(wait),
          },
        });
      }
    }
    if (match === undefined || (match.route === "webhook" && !this.#opts.webhooks)) {
      // A webhook path may carry a secret: never echoed.
      const shown = match?.route === "webhook" ? "/v1/webhooks/..." : safePath(path);
      throw new ApiError({
        status: 404,
        code: "NOT_FOUND",
        message: `no such endpoint: ${method} ${shown}`,
      });
    }
    const allow = () => [...match.methods, "OPTIONS"].join(", ");
    if (method === "OPTIONS") {
      res.writeHead(204, { allow: allow() });
      res.end();
      return;
    }
    if (isV1 && this.#token && !this.#token.accepts(req.headers.authorization)) {
      throw new ApiError({
        status: 401,
        code: "UNAUTHORIZED",
        message: "a valid bearer token is required",
        headers: {
          "www-authenticate": 'Bearer realm="regscan"',
        },
      });
    }
    if (!match.methods.includes(method)) throw methodNotAllowed(method, allow());
    // A request that declares no body has none: no read (an async iterator per request).
    if (
      isV1 &&
      (req.headers["content-length"] !== undefined ||
        req.headers["transfer-encoding"] !== undefined)
    ) {
      await this.#readBody(req);
    }

    switch (match.route) {
      case "healthz":
        send(res, { status: 200, body: { status: "ok" } });
        break;
      case "readyz":
        await this.#readiness(res);
        break;
      case "metrics": {
        const body = await this.#opts.metrics.metrics();
        res.writeHead(200, {
          "content-type": this.#opts.metrics.contentType,
          "cache-control": "no-store",
        });
        res.end(body);
        break;
      }
      case "repositories": {
        const { warmer } = this.#opts;
        const body = await this.#heavy.run(
          async () => warmer.statusListBody?.() ?? statusListBody(await warmer.statuses()),
          abortOnClose(res),
        );
        await sendPieces(res, bodyPieces(body));
        break;
      }
      case "events": {
        if (!this.#events.hasRoom()) {
          throw new ApiError({
            status: 503,
            code: "TOO_MANY_STREAMS",
            message: "too many event streams open; try again later",
            headers: { "retry-after": "30" },
          });
        }
        const repo = query.get("repository");
        const lastEventId = req.headers["last-event-id"];
        this.#events.attach(
          res,
          repo ? (await this.#watchedName(repo)).toString() : undefined,
          typeof lastEventId === "string" && lastEventId !== "" ? lastEventId : undefined,
        );
        break;
      }
      case "refresh": {
        const name = await this.#watchedName(match.rest.slice(0, -"/refresh".length));
        const refresh = await this.#opts.warmer.requestRefresh(name);
        send(res, {
          status: 202,
          body: { name: name.toString(), status: "refresh queued", refresh },
        });
        break;
      }
      case "repository": {
        // `GET .../refresh` names the refresh action unless a repository is really called
        // that: a wrong method, not an unwatched repository.
        if (match.rest.endsWith("/refresh") && !(await this.#isWatched(match.rest))) {
          throw methodNotAllowed(method, "POST, OPTIONS");
        }
        const name = await this.#watchedName(match.rest);
        // A kept answer may go out gzip-encoded, to a client that asks for it.
        res.setHeader("vary", "accept-encoding");
        // A repository this replica keeps no answer of is likely to need the shared one:
        // asked for now, it goes in the same store round trip as the record's version.
        const early =
          method === "GET" && !this.#repositoryBodies.holds(name.toString())
            ? this.#opts.sharedAnswers?.fetch(name, this.#readDeadlines.signal())
            : undefined;
        const stored = await this.#storedState(name);
        // The body is cached per stored version; how stale it is goes in headers, per answer:
        // since the later of the stored record's last listing (whichever replica made it)
        // and this replica's own.
        const local = this.#opts.warmer.repositoryStatus?.(name);
        const { staleSeconds, intervalSeconds } = staleness({
          lastUpdate: later(stored?.lastUpdate, local?.lastUpdate),
          intervalMs: local?.intervalMs,
        });
        if (staleSeconds !== undefined) res.setHeader("x-regscan-stale-seconds", staleSeconds);
        if (intervalSeconds !== undefined) {
          res.setHeader("x-regscan-interval-seconds", intervalSeconds);
        }
        let answer: RepositoryAnswer;
        try {
          if (method === "HEAD" && this.#headWithoutBody(name, stored, res)) break;
          answer = await this.#repositoryBody(name, stored, res, early);
        } finally {
          // Shared for up to NOTICED_STATE_TTL_MS: the record's tag list must not be.
          stored?.release?.();
        }
        if (isText(answer)) await sendPieces(res, answer);
        else if (isGzip(answer)) await sendGzipAnswer(res, answer);
        // Too large to hold: written as it is produced, a bounded number at once.
        else {
          await this.#heavy.run(
            () =>
              isOversized(answer) ? this.#streamRepositoryBody(name, res) : sendLayout(res, answer),
            abortOnClose(res),
            answerWeight(stored),
          );
        }
        break;
      }
      case "webhook":
        // Reached only without receivers (answered above) or with another method.
        throw methodNotAllowed(method, "POST, OPTIONS");
      case "image": {
        const ref = withDefaultTag(parseRef(match.rest));
        await this.#watchedName(ref.name.toString());
        const read = () =>
          this.#answer(
            () => this.#opts.registry.getImage(ref, { signal: abortOnClose(res) }),
            ref.toString(),
          );
        // By digest, every cached tag of the repository is read: as costly as the repository.
        const info = await (ref.digest === undefined
          ? read()
          : this.#heavy.run(read, abortOnClose(res)));
        send(res, { status: 200, body: imageJson(info) });
        break;
      }
    }
  }

  async #readiness(res: ServerResponse): Promise<void> {
    const signal = AbortSignal.timeout(2_000);
    try {
      await this.#opts.ready(signal);
      send(res, { status: 200, body: { status: "ready" } });
    } catch (err) {
      this.#opts.logger.warn(
        { err: errorSummary(err) },
        "readiness check failed: the store does not answer",
      );
      send(res, {
        status: 503,
        body: {
          status: "not ready",
          code: "STORE_UNAVAILABLE",
          message: "the store does not answer",
        },
      });
    }
  }

  /** Reads and discards a request body, refusing one over the bound. */
  async #readBody(req: IncomingMessage): Promise<void> {
    const max = this.#opts.maxBodyBytes ?? 65_536;
    // The connection is closed after a 413 so that the rest of the body is never read.
    const tooLarge = () =>
      new ApiError({
        status: 413,
        code: "PAYLOAD_TOO_LARGE",
        message: `request body over ${max} bytes`,
        headers: {
          connection: "close",
        },
      });
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > max) throw tooLarge();
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > max) throw tooLarge();
    }
  }

  /**
   * Answers a `HEAD` of a stored repository whose body of this version is not kept from its
   * record alone (without `Content-Length`, as a streamed body): building a 40,000-tag
   * body only to drop it cost a replica seconds, and the headers (how stale, which interval)
   * do not come from it (bench:scale at 2,000,000 tags: its reads of a changed repository's
   * headers, after each record write, put its webhook staleness at p50 6 s where the tag
   * events came after 0.7 s). False when the answer needs the body's path: a kept body
   * (its length is known), or no listing in the record to go by.
   */
  #headWithoutBody(
    name: ImageName,
    stored: StoredRepositoryState | undefined,
    res: ServerResponse,
  ): boolean {
    // A record without a listing may not answer 200 to a `GET`: that path says what it does.
    if (stored?.tags === undefined) return false;
    if (this.#repositoryBodies.peek(name.toString(), stored.version) !== undefined) return false;
    writeUnsizedJsonHead(res);
    res.end();
    return true;
  }

  /**
   * A repository's JSON: from the body cache when the stored record still has the version
   * the body was built from, else built (a bounded number at once) and kept. A body over
   * the cache's bound is never held whole: its layout is returned to be written out, or,
   * when the layout is too large as well, word of it, and the body is read again as it is
   * written.
   */
  async #repositoryBody(
    name: ImageName,
    stored: StoredRepositoryState | undefined,
    res: ServerResponse,
    early?: Promise<FetchedAnswer>,
  ): Promise<RepositoryAnswer> {
    const key = name.toString();
    const version = stored?.version;
    const kept = version === undefined ? undefined : this.#repositoryBodies.peek(key, version);
    if (kept !== undefined) {
      this.#answers.inc({ source: "kept" });
      return kept;
    }
    if (this.#opts.repositoryState !== undefined && stored === undefined) {
      // No record in the store: not cached yet. Said at once, without a build's turn, so
      // that readers polling a cold fleet (every read during a first fill) cost a lookup.
      return this.#answer(() => Promise.reject(new NotCachedError(key)), key);
    }
    const clientGone = abortOnClose(res);
    const work = (signal: AbortSignal) =>
      // Errors of slices read later, during the build, are answered like the first read's.
      this.#answer(async () => {
        const stream = await (stored?.open?.(signal) ??
          streamRepository(this.#opts.registry, name, { signal }));
        const maxBytes = this.#repositoryBodies.maxBytes;
        const built = await buildRepositoryAnswer(key, stream, {
          maxBytes,
          maxLayoutChars: maxBytes / 4,
        });
        return built ?? OVERSIZED;
      }, key);
    // A repository known to be small costs about what an image read does (a few store round
    // trips, a millisecond of JSON): gating it behind the few large builds at once turned 50
    // readers of a fleet of small repositories into SERVER_BUSY answers. Its builds are
    // bounded by their tags instead: each holds its image records until its text is done,
    // and hundreds of them at once took a replica past its 128 MiB heap (bench:scale at
    // 10,000 repositories, 166,059 Dates in its near-limit heap snapshot).
    const smallTags =
      stored?.tags !== undefined && stored.tags <= SMALL_REPOSITORY_TAGS ? stored.tags : undefined;
    const build = (signal: AbortSignal) =>
      smallTags !== undefined
        ? this.#smallBuilds.run(() => work(signal), signal, smallTags)
        : this.#heavy.run(() => work(signal), signal, answerWeight(stored));
    if (version === undefined) {
      this.#answers.inc({ source: "built" });
      return build(clientGone);
    }
    // A build shared by several clients must not stop when the first of them leaves.
    let mine = false;
    const answer = this.#repositoryBodies.get(key, version, (made) => {
      mine = true;
      return this.#sharedOrBuilt(name, version, made, build, early);
    });
    if (!mine) this.#answers.inc({ source: "shared" });
    return raceAbort(answer, clientGone);
  }

  /**
   * `name`'s answer at `version` as another replica shared it through the store (`early`:
   * its value fetched already), else built (and shared, when it is text: a layout or a
   * streamed body is not).
   */
  async #sharedOrBuilt(
    name: ImageName,
    version: string,
    made: MadeAnswer,
    build: (signal: AbortSignal) => Promise<RepositoryAnswer>,
    early: Promise<FetchedAnswer> | undefined,
  ): Promise<RepositoryAnswer> {
    const signal = this.#readDeadlines.signal();
    const shared = this.#opts.sharedAnswers;
    let got: SharedAnswer | undefined;
    if (shared !== undefined) {
      got = early
        ? await shared.answerOf(name, version, await early)
        : await shared.read(name, version, signal);
    }
    if (got !== undefined) {
      this.#answers.inc({ source: "stored" });
      made.builtAt = got.builtAt;
      // Kept only where it would stay until asked again: readers going round more
      // repositories than the cache holds (each read from the store) only churned it, every
      // read pushing out an answer before it was asked again (bench:scale, 50 readers: 0-57
      // of a replica's 8,900 answers kept; 18-22% with this rule).
      made.keep = this.#repositoryBodies.admits(name.toString());
      return got.gzip;
    }
    this.#answers.inc({ source: "built" });
    const builtAt = Date.now();
    const body = await build(signal);
    // Not awaited: the reader has its answer; the write only spares the next replica a build,
    // and this one's cache then keeps the answer's gzip, a tenth of its bytes.
    if (shared !== undefined && isText(body)) {
      const key = name.toString();
      void shared
        .write(name, version, body, builtAt, this.#readDeadlines.signal())
        .then((zipped) => {
          if (zipped !== undefined) this.#repositoryBodies.replace(key, version, zipped);
        });
    }
    return body;
  }

  /**
   * Writes `name`'s answer as it is read, a slice of tags at a time, each piece once the
   * socket took the previous ones: what it holds is bounded by the slice, not the body, and
   * it carries no `Content-Length` (HTTP/1.1 chunked), as the length is known only at the
   * end. A failure before the first byte gets its error answer; one after it cuts the
   * answer off without its last chunk, so that no client takes it for whole.
   */
  async #streamRepositoryBody(name: ImageName, res: ServerResponse): Promise<void> {
    const key = name.toString();
    const signal = abortOnClose(res, STREAM_TIMEOUT_MS);
    const stream = await this.#answer(
      () => streamRepository(this.#opts.registry, name, { signal }),
      key,
    );
    const pieces = repositoryJsonPieces(key, stream, LARGE_BODY_SLICE);
    // The first piece before the head: a first slice that cannot be read gets its answer.
    const first = await pieces.next();
    writeUnsizedJsonHead(res);
    if (res.req.method === "HEAD") {
      res.end();
      await pieces.return(undefined);
      return;
    }
    const writer = new PacedWriter(res);
    for (let next = first; next.done !== true; next = await pieces.next()) {
      if (res.destroyed) {
        await pieces.return(undefined);
        return;
      }
      await writer.write(next.value);
    }
    res.end();
  }

  /**
   * The stored record's state of `name` (undefined without a `repositoryState` option or
   * without a record), read once a second at most, whoever asks.
   */
  async #storedState(name: ImageName): Promise<StoredRepositoryState | undefined> {
    const read = this.#opts.repositoryState;
    if (read === undefined) return undefined;
    const key = name.toString();
    // Readers go round thousands of repositories, each asked for again seconds later: read
    // each second, nearly every read was a store round trip, kept answers included.
    const ttlMs = this.#opts.recordNotices?.live() ? NOTICED_STATE_TTL_MS : 1_000;
    return this.#answer(
      // Not the client's signal: the read is shared with others asking at the same time.
      () =>
        this.#repositoryBodies.version(key, () => read(name, this.#readDeadlines.signal()), ttlMs),
      key,
    );
  }

  /** True when `encoded` parses as a repository name that is watched. */
  async #isWatched(encoded: string): Promise<boolean> {
    try {
      await this.#watchedName(encoded);
      return true;
    } catch {
      return false;
    }
  }

  async #watchedName(encoded: string): Promise<ImageName> {
    let name = this.#parsedNames.get(encoded);
    if (name === undefined) {
      const text = decode(encoded);
      try {
        name = parseImageName(text);
      } catch (err) {
        throw asBadRequest(err, text);
      }
      if (this.#parsedNames.size >= MAX_PARSED_NAMES) this.#parsedNames.clear();
      this.#parsedNames.set(encoded, name);
    }
    if (!(await this.#opts.warmer.isWatched(name))) {
      throw new ApiError({
        status: 404,
        code: "NOT_WATCHED",
        message: `repository ${name.toString()} is not watched by this regscan`,
      });
    }
    return name;
  }

  /** Runs a cache read and turns its errors into API answers. */
  async #answer<T>(read: () => Promise<T>, what: string): Promise<T> {
    try {
      return await read();
    } catch (err) {
      if (!(err instanceof RegscanError)) throw err;
      if (err instanceof CachedFetchError) {
        // The repository's last error: it has never been fetched successfully.
        throw new ApiError({ status: 502, code: err.code, message: err.message });
      }
      if (err instanceof ImageExcludedError) {
        throw new ApiError({
          status: 404,
          code: err.code,
          message: err.message,
          headers: {},
          details: { excludedReason: err.excludedReason },
        });
      }
      // Checked against regscan's codes: a misspelt case does not compile.
      switch (knownErrorCode(err.code)) {
        case "NOT_CACHED":
          throw new ApiError({
            status: 503,
            code: "NOT_CACHED",
            message: err.message,
            headers: {
              "retry-after": String(this.#opts.notCachedRetryAfter ?? 5),
            },
          });
        case "UNKNOWN_TAG":
        case "UNKNOWN_DIGEST":
        case "MANIFEST_UNKNOWN":
        case "NAME_UNKNOWN":
          throw new ApiError({ status: 404, code: err.code, message: err.message });
        default:
          throw new ApiError({ status: 502, code: err.code, message: `${what}: ${err.message}` });
      }
    }
  }

  #fail(res: ServerResponse, err: unknown): void {
    // A client that left is no fault of the server's: nobody is left to answer.
    if (res.destroyed || res.socket === null || res.socket.destroyed) {
      this.#opts.logger.debug(
        { err: errorSummary(err) },
        "API client disconnected before the answer was sent",
      );
      res.destroy();
      return;
    }
    if (res.headersSent) {
      // Cut off mid-body (a store read failing while an answer is written out).
      this.#opts.logger.warn(
        { err: errorSummary(err) },
        "API answer cut off: it failed after its first bytes were sent",
      );
      res.destroy();
      return;
    }
    if (err instanceof ApiError) {
      send(res, {
        status: err.status,
        body: { code: err.code, message: err.message, ...err.details },
        headers: err.headers,
      });
      return;
    }
    this.#opts.logger.error({ err: errorSummary(err) }, "API request failed");
    send(res, {
      status: 500,
      body: { code: "INTERNAL", message: "internal error; see the server's log" },
    });
  }
}

/**
 * `name`'s answer from `registry` as a stream: its own `streamImageRepository` when it has
 * one, else its whole answer.
 */
async function streamRepository(
  registry: Registry,
  name: ImageName,
  opts: OperationOptions,
): Promise<RepositoryStream> {
  if (registry.streamImageRepository) return registry.streamImageRepository(name, opts);
  return streamOfMetadata(await registry.getImageRepositoryMetadata(name, opts));
}

/** Heavy-work turns a repository's answer takes, from the tags its stored record lists. */
function answerWeight(stored: StoredRepositoryState | undefined): number {
  return Math.ceil((stored?.tags ?? 0) / TAGS_PER_HEAVY_TURN);
}

/** Splits `host:port`, `:port` or `[v6]:port`. */
export function splitListenAddress(address: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  if (!m)
    throw new ApiError({
      status: 500,
      code: "INVALID_LISTEN",
      message: `invalid listen address ${JSON.stringify(address)}: expected host:port`,
    });
  const host = m[1] ?? m[2];
  return { host: host === "" ? undefined : host, port: Number(m[3]) };
}

/** One JSON answer: its status, body and extra headers. */
interface JsonAnswer<Body> {
  status: number;
  body: Body;
  headers?: Record<string, string> | undefined;
}

function send(res: ServerResponse, { status, body, headers }: JsonAnswer<unknown>): void {
  // A final newline, so that `curl` output does not run into the shell prompt.
  sendBody(res, { status, body: Buffer.from(`${JSON.stringify(body)}\n`, "utf8"), headers });
}

/** Sends JSON text already built (ending with a newline). */
function sendBody(res: ServerResponse, { status, body, headers }: JsonAnswer<Buffer>): void {
  writeJsonHead(res, { status, length: body.length, headers });
  res.end(body);
}

/** Writes the head of a JSON answer of `length` bytes (never cached by a client). */
function writeJsonHead(
  res: ServerResponse,
  { status, length, headers = {} }: Omit<JsonAnswer<never>, "body"> & { length: number },
): void {
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": length,
    "cache-control": "no-store",
    ...headers,
  });
}

/** A 200 JSON head without a length: a body written as it is read, or a `HEAD` not built. */
function writeUnsizedJsonHead(res: ServerResponse): void {
  res.writeHead(200, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
  });
}

/** Writes a 200 JSON head; false (the answer ended) for a HEAD request, which has no body. */
function startJsonBody(
  res: ServerResponse,
  length: number,
  headers?: Record<string, string>,
): boolean {
  writeJsonHead(res, { status: 200, length, headers });
  if (res.req.method !== "HEAD") return true;
  res.end();
  return false;
}

/** `body` as views of at most {@link LARGE_BODY_SLICE} bytes each (no copy). */
function bodyPieces(body: Uint8Array): Buffer[] {
  // Most answers are one piece: the body itself, without a view made of it per read.
  if (Buffer.isBuffer(body) && body.byteLength <= LARGE_BODY_SLICE) return [body];
  const pieces: Buffer[] = [];
  for (let at = 0; at < body.byteLength; at += LARGE_BODY_SLICE) {
    const end = Math.min(body.byteLength, at + LARGE_BODY_SLICE);
    pieces.push(Buffer.from(body.buffer, body.byteOffset + at, end - at));
  }
  return pieces;
}

/**
 * Sends a JSON body held in pieces of about 64 KiB, each after the previous one left:
 * handing a socket megabytes at once copies them into the kernel in one go, and a hundred
 * such answers at once hold up the event loop for every other request. `headers` go with
 * the head (a gzip body's encoding).
 */
async function sendPieces(
  res: ServerResponse,
  text: RepositoryText,
  headers?: Record<string, string>,
): Promise<void> {
  if (!startJsonBody(res, textBytes(text), headers)) return;
  for (const piece of text) {
    if (res.destroyed) break;
    if (!res.write(piece)) await drained(res);
  }
  res.end();
}

/**
 * Sends a body held gzip-compressed: as it is to a client that accepts gzip, else unzipped.
 * Its gzip was checked when it was read or made, so a failure to unzip it here is a fault
 * of this process, answered as one.
 */
async function sendGzipAnswer(res: ServerResponse, answer: GzipAnswer): Promise<void> {
  if (!acceptsGzip(res.req)) {
    await sendPieces(res, [await unzipBody(answer.gzip, answer.bytes)]);
    return;
  }
  await sendPieces(res, bodyPieces(answer.gzip), { "content-encoding": "gzip" });
}

/**
 * Writes a repository answer from its layout, slice by slice as the text is produced, each
 * slice only once the socket took the previous ones (its `drain`): the body is never held.
 */
async function sendLayout(res: ServerResponse, layout: RepositoryJsonLayout): Promise<void> {
  if (!startJsonBody(res, layout.byteLength)) return;
  const writer = new PacedWriter(res);
  for (const slice of layout.slices(LARGE_BODY_SLICE)) {
    if (res.destroyed) break;
    await writer.write(slice);
  }
  res.end();
}

/**
 * Writes an answer produced as it goes: each piece once the socket took the previous ones
 * (its `drain`), and a turn of the event loop every few milliseconds, since a fast reader
 * never makes the socket push back and other requests must not wait for the whole answer.
 */
class PacedWriter {
  readonly #turns = new EventLoopTurns();

  constructor(private readonly res: ServerResponse) {}

  async write(piece: string): Promise<void> {
    if (this.res.write(piece)) return this.#turns.take();
    await drained(this.res);
    this.#turns.reset();
  }
}

/** Resolves once `res` can take more (or is closed). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** The later of two optional times. */
function later(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a.getTime() >= b.getTime() ? a : b;
}

function methodNotAllowed(method: string, allow: string): ApiError {
  return new ApiError({
    status: 405,
    code: "METHOD_NOT_ALLOWED",
    message: `method ${method} not allowed here`,
    headers: { allow },
  });
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ApiError({
      status: 400,
      code: "BAD_ENCODING",
      message: "the path is not valid percent-encoding",
    });
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
  return new ApiError({ status: 400, code, message });
}

/** Aborts when the client goes (or went already), or after `timeoutMs` (the read bound). */
function abortOnClose(res: ServerResponse, timeoutMs = READ_TIMEOUT_MS): AbortSignal {
  const controller = new AbortController();
  if (res.destroyed || res.socket === null || res.socket.destroyed) {
    controller.abort();
    return controller.signal;
  }
  // One timer and one listener per answer, not AbortSignal.timeout + AbortSignal.any: at a
  // thousand answers a second those kept 30 s of signals alive (the GC's work) and built an
  // AbortError for every answer, since "close" also comes after one that finished.
  const timer = setTimeout(
    () => controller.abort(new DOMException("the answer took too long", "TimeoutError")),
    timeoutMs,
  );
  res.once("close", () => {
    clearTimeout(timer);
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

function safePath(path: string): string {
  return JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}...` : path);
}

function errorSummary(err: unknown): { name: string; code?: string | undefined; message: string } {
  if (err instanceof Error) {
    return { name: err.name, code: (err as { code?: string }).code, message: err.message };
  }
  return { name: "unknown", message: String(err) };
}
