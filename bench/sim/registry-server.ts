/**
 * One simulated registry on a loopback port: the read side of the Distribution API (`/v2/`
 * ping with a Bearer challenge, `/token`, tags/list, manifest HEAD/GET by tag or digest,
 * blob GET) over a RegistryContent, with its personality's paging and quota, and injected
 * 429s and latency. Plain node:http, parsed by hand: it must not be what a bench measures.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { ManifestHead, RegistryContent } from "./content.js";
import type { GeneratedImage, Served } from "./images.js";
import type { Personality } from "./personalities.js";
import { seededRandom } from "./rng.js";
import { type RequestKind, RequestStats } from "./stats.js";
import type { TokenIssuer } from "./tokens.js";

/** Faults injected into every `/v2/NAME/...` request (not the ping or the token endpoint). */
export interface Faults {
  /** Share of requests answered 429 (0..1, deterministic from the seed). */
  throttleFraction?: number;
  /** `Retry-After` of injected 429s, in seconds (default 1). */
  retryAfterSeconds?: number;
  /** Delay before every answer, ms. */
  latencyMs?: number;
  /** Extra random delay up to this many ms. */
  latencyJitterMs?: number;
}

/** One request as answered, for tests that follow what a client did. */
export interface AnsweredRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  kind: RequestKind;
  status: number;
}

export interface RegistryServerOptions {
  name: string;
  personality: Personality;
  content: RegistryContent;
  tokens: TokenIssuer;
  faults?: Faults | undefined;
  /** Overrides the personality's pull quota (Docker Hub); `null` removes it. */
  pullQuota?: { limit: number; windowSeconds: number } | null | undefined;
}

const JSON_TYPE = "application/json";
const API_VERSION = "registry/2.0";

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message, detail: null }] });
}

/** A sliding-window pull count, as Docker Hub keeps per client. */
class PullQuota {
  readonly #times: number[] = [];
  #head = 0;
  constructor(
    readonly limit: number,
    readonly windowSeconds: number,
  ) {}
  remaining(now: number): number {
    const from = now - this.windowSeconds * 1000;
    while (this.#head < this.#times.length && (this.#times[this.#head] as number) <= from) {
      this.#head++;
    }
    if (this.#head > 4096 && this.#head * 2 > this.#times.length) {
      this.#times.splice(0, this.#head);
      this.#head = 0;
    }
    return Math.max(0, this.limit - (this.#times.length - this.#head));
  }
  take(now: number): void {
    this.#times.push(now);
  }
}

export class SimRegistry {
  readonly name: string;
  readonly personality: Personality;
  readonly content: RegistryContent;
  readonly stats = new RequestStats();
  #faults: Faults;
  #quota: PullQuota | undefined;
  #random: () => number;
  #server: Server | undefined;
  #port = 0;
  #listeners: Array<(r: AnsweredRequest) => void> = [];
  readonly #tokens: TokenIssuer;

  constructor(opts: RegistryServerOptions) {
    this.name = opts.name;
    this.personality = opts.personality;
    this.content = opts.content;
    this.#tokens = opts.tokens;
    this.#faults = opts.faults ?? {};
    const quota = opts.pullQuota === undefined ? opts.personality.pullQuota : opts.pullQuota;
    this.#quota = quota ? new PullQuota(quota.limit, quota.windowSeconds) : undefined;
    this.#random = seededRandom(opts.content.seed.length * 7919 + 17);
  }

  get port(): number {
    return this.#port;
  }

  /** `127.0.0.1:PORT`, as an image reference's host. */
  get host(): string {
    return `127.0.0.1:${this.#port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  setFaults(faults: Faults): void {
    this.#faults = { ...faults };
  }

  get faults(): Faults {
    return { ...this.#faults };
  }

  /** Pulls left in Docker Hub's window, or undefined without a quota. */
  pullsRemaining(now = Date.now()): number | undefined {
    return this.#quota?.remaining(now);
  }

  /** Calls `fn` after every answer; returns a function that stops it. */
  onRequest(fn: (r: AnsweredRequest) => void): () => void {
    this.#listeners.push(fn);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== fn);
    };
  }

  async listen(port = 0): Promise<void> {
    const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.#handle(req, res));
    server.headersTimeout = 70_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === "string")
      throw new Error("simulated registry has no port");
    this.#port = addr.port;
    this.#server = server;
  }

  close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const delay =
      (this.#faults.latencyMs ?? 0) + this.#random() * (this.#faults.latencyJitterMs ?? 0);
    if (delay > 0) setTimeout(() => this.#route(req, res), delay);
    else this.#route(req, res);
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = q < 0 ? undefined : new URLSearchParams(raw.slice(q + 1));
    const method = req.method ?? "GET";
    const now = Date.now();
    const answer = (kind: RequestKind, status: number) => {
      if (status === 429) this.stats.throttled(now);
      for (const l of this.#listeners) l({ method, url: raw, kind, status });
    };

    if (path === "/token") {
      this.stats.count("token", now);
      const { token, expiresIn } = this.#tokens.issue(this.name, query?.getAll("scope") ?? [], now);
      const body = JSON.stringify({
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date(now).toISOString(),
      });
      this.#send(res, 200, JSON_TYPE, body);
      answer("token", 200);
      return;
    }
    if (path === "/v2/" || path === "/v2") {
      this.stats.count("ping", now);
      if (this.#tokens.allows(req.headers.authorization, this.name, undefined, now)) {
        this.#send(res, 200, JSON_TYPE, "{}");
        answer("ping", 200);
      } else {
        this.#unauthorized(res, undefined);
        answer("ping", 401);
      }
      return;
    }
    if (!path.startsWith("/v2/")) {
      this.stats.count("other", now);
      this.#send(res, 404, JSON_TYPE, errorBody("NOT_FOUND", "no such endpoint"));
      answer("other", 404);
      return;
    }

    let kind: RequestKind = "other";
    let name = "";
    let ref = "";
    if (path.endsWith("/tags/list")) {
      kind = "tags";
      name = path.slice(4, -"/tags/list".length);
    } else {
      const m = path.lastIndexOf("/manifests/");
      const b = path.lastIndexOf("/blobs/");
      if (m > 3 && m > b) {
        kind = method === "HEAD" ? "manifestHead" : "manifestGet";
        name = path.slice(4, m);
        ref = decodeURIComponent(path.slice(m + "/manifests/".length));
      } else if (b > 3) {
        kind = "blob";
        name = path.slice(4, b);
        ref = path.slice(b + "/blobs/".length);
      }
    }
    this.stats.count(kind, now);
    if (kind === "other" || (method !== "GET" && method !== "HEAD")) {
      const status = kind === "other" ? 404 : 405;
      this.#send(res, status, JSON_TYPE, errorBody("UNSUPPORTED", "not served by the simulator"));
      answer(kind, status);
      return;
    }
    if (!this.#tokens.allows(req.headers.authorization, this.name, name, now)) {
      this.#unauthorized(res, name);
      answer(kind, 401);
      return;
    }
    const throttle = this.#faults.throttleFraction ?? 0;
    if (throttle > 0 && this.#random() < throttle) {
      this.#send(res, 429, JSON_TYPE, errorBody("TOOMANYREQUESTS", "simulated throttle"), {
        "retry-after": String(this.#faults.retryAfterSeconds ?? 1),
      });
      answer(kind, 429);
      return;
    }
    if (!this.content.hasRepository(name)) {
      this.#send(res, 404, JSON_TYPE, errorBody("NAME_UNKNOWN", `repository ${name} not known`));
      answer(kind, 404);
      return;
    }
    let status: number;
    if (kind === "tags") status = this.#tags(req, res, name, query);
    else if (kind === "blob") status = this.#blob(method, res, name, ref);
    else status = this.#manifest(method, res, name, ref, now);
    answer(kind, status);
  }

  #unauthorized(res: ServerResponse, repository: string | undefined): void {
    const scope = repository === undefined ? "" : `,scope="repository:${repository}:pull"`;
    this.#send(res, 401, JSON_TYPE, errorBody("UNAUTHORIZED", "authentication required"), {
      "www-authenticate": `Bearer realm="${this.url}/token",service="${this.name}"${scope}`,
    });
  }

  #tags(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    query: URLSearchParams | undefined,
  ): number {
    const p = this.personality;
    if (p.pagination === "none") {
      return this.#send(
        res,
        200,
        JSON_TYPE,
        JSON.stringify({ name, tags: this.content.tags(name, p.order) }),
      );
    }
    const nParam = query?.get("n") ?? null;
    let n = p.defaultPageSize;
    if (nParam !== null) {
      n = Number(nParam);
      if (!Number.isInteger(n) || n < 0) {
        return this.#send(
          res,
          400,
          JSON_TYPE,
          errorBody("PAGINATION_NUMBER_INVALID", "invalid number of results requested"),
        );
      }
    }
    if (p.maxPageSize !== undefined && n > p.maxPageSize) {
      if (p.oversize === undefined || p.oversize === "cap") n = p.maxPageSize;
      else
        return this.#send(
          res,
          p.oversize.status,
          JSON_TYPE,
          errorBody(p.oversize.code, p.oversize.message),
        );
    }
    let start: number;
    const token = query?.get("next_page") ?? null;
    if (p.cursor === "next_page" && token !== null) {
      const decoded = /^p:(\d+)$/.exec(Buffer.from(token, "base64url").toString("utf8"));
      if (decoded === null) {
        return this.#send(
          res,
          400,
          JSON_TYPE,
          errorBody("INVALID_REQUEST", "invalid next_page token"),
        );
      }
      start = Number(decoded[1]);
    } else {
      start = this.content.startAfter(name, p.order, query?.get("last") ?? undefined);
    }
    const all = this.content.tags(name, p.order);
    const page = all.slice(start, start + n);
    const headers: Record<string, string> = {};
    const end = start + page.length;
    if (end < all.length && page.length > 0) {
      const cursor =
        p.cursor === "next_page"
          ? `n=${n}&next_page=${Buffer.from(`p:${end}`).toString("base64url")}`
          : `n=${n}&last=${encodeURIComponent(page[page.length - 1] as string)}`;
      headers.link = `<${this.#nextTarget(req, name)}?${cursor}>; rel="next"`;
    }
    return this.#send(res, 200, JSON_TYPE, JSON.stringify({ name, tags: page }), headers);
  }

  #nextTarget(req: IncomingMessage, name: string): string {
    const host = req.headers.host ?? this.host;
    switch (this.personality.link) {
      case "absolute":
        return `http://${host}/v2/${name}/tags/list`;
      case "absolute-no-port":
        return `http://${host.replace(/:\d+$/, "")}/v2/${name}/tags/list`;
      case "drop-prefix":
        return `/v2/${name.slice(name.indexOf("/") + 1)}/tags/list`;
      default:
        return `/v2/${name}/tags/list`;
    }
  }

  #manifest(method: string, res: ServerResponse, name: string, ref: string, now: number): number {
    // A HEAD needs the digest, size and media type only, which the content keeps without
    // the image (a poll HEADs every tag); a GET needs the bytes.
    let image: GeneratedImage | undefined;
    let head: ManifestHead | undefined;
    if (method === "HEAD") head = this.content.manifestHead(name, ref);
    else {
      image = ref.startsWith("sha256:")
        ? this.content.manifestByDigest(name, ref)
        : this.content.resolveTag(name, ref);
    }
    const digest = image?.digest ?? head?.digest;
    if (digest === undefined) {
      return this.#send(
        res,
        404,
        JSON_TYPE,
        errorBody("MANIFEST_UNKNOWN", `manifest unknown: ${ref}`),
      );
    }
    const headers: Record<string, string> = { "docker-content-digest": digest };
    const quota = this.#quota;
    if (quota !== undefined) {
      let remaining = quota.remaining(now);
      const w = `;w=${quota.windowSeconds}`;
      // Only a GET of an image manifest is a pull: HEADs are free, and an index's GET is
      // followed by the platform manifest GETs that count.
      if (image !== undefined && image.children.length === 0) {
        if (remaining <= 0) {
          return this.#send(
            res,
            429,
            JSON_TYPE,
            errorBody("TOOMANYREQUESTS", "You have reached your pull rate limit."),
            { "ratelimit-limit": `${quota.limit}${w}`, "ratelimit-remaining": `0${w}` },
          );
        }
        quota.take(now);
        this.stats.pulled(now);
        remaining--;
      }
      headers["ratelimit-limit"] = `${quota.limit}${w}`;
      headers["ratelimit-remaining"] = `${remaining}${w}`;
      headers["docker-ratelimit-source"] = "127.0.0.1";
    }
    if (image === undefined) {
      const h = head as ManifestHead;
      return this.#head(res, h.mediaType, h.size, headers);
    }
    return this.#send(res, 200, image.mediaType, image.bytes, headers);
  }

  #blob(method: string, res: ServerResponse, name: string, digest: string): number {
    const blob: Served | undefined = this.content.blob(name, digest);
    if (blob === undefined) {
      return this.#send(res, 404, JSON_TYPE, errorBody("BLOB_UNKNOWN", `blob unknown: ${digest}`));
    }
    const headers = { "docker-content-digest": blob.digest };
    if (method === "HEAD") return this.#head(res, blob.mediaType, blob.bytes.length, headers);
    return this.#send(res, 200, "application/octet-stream", blob.bytes, headers);
  }

  #head(res: ServerResponse, mediaType: string, size: number, headers: Record<string, string>) {
    res.writeHead(200, {
      "content-type": mediaType,
      "content-length": String(size),
      "docker-distribution-api-version": API_VERSION,
      ...headers,
    });
    res.end();
    return 200;
  }

  #send(
    res: ServerResponse,
    status: number,
    type: string,
    body: string | Buffer,
    headers: Record<string, string> = {},
  ): number {
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    res.writeHead(status, {
      "content-type": type,
      "content-length": String(bytes.length),
      "docker-distribution-api-version": API_VERSION,
      ...headers,
    });
    res.end(bytes);
    return status;
  }
}
