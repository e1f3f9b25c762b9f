import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import type { OperationOptions } from "../../src/abort.js";
import { CachedFetchError, ImageExcludedError, NotCachedError } from "../../src/cache/errors.js";
import type { ImageInfo, RepositoryMetadata } from "../../src/image/info.js";
import { type ImageName, type ImageRef, parseImageRef } from "../../src/image/ref.js";
import type { Registry } from "../../src/registry/registry.js";
import { ApiServer } from "../../src/server/api-server.js";
import type {
  RefreshRequestOutcome,
  RepositoryStatus,
  TagEvent,
  WarmerControl,
} from "../../src/server/warmer-control.js";
import { type Answer, call } from "./http-call.js";

const APP = "localhost:5000/team/app";
const COLD = "localhost:5000/team/cold";
const BROKEN = "localhost:5000/team/broken";
/** A watched repository whose watch check takes a while (to race a client's disconnect). */
const SLOW = "localhost:5000/team/slow";
/** A watched repository whose cache read takes 2 s unless the request is aborted. */
const SLOW_READ = "localhost:5000/team/slow-read";
const TOKEN = "tok-7f3a9c";

function info(ref: string): ImageInfo {
  return {
    ref: parseImageRef(ref),
    digest: "sha256:aaaa",
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    createdAt: new Date("2024-01-02T03:04:05Z"),
    labels: { a: "b" },
    platform: { os: "linux", architecture: "amd64" },
    platforms: [{ os: "linux", architecture: "amd64" }],
  };
}

class FakeRegistry implements Registry {
  async getImageRepositoryMetadata(
    name: ImageName,
    opts?: OperationOptions,
  ): Promise<RepositoryMetadata> {
    const n = name.toString();
    if (n === COLD) throw new NotCachedError(n);
    if (n === BROKEN)
      throw new CachedFetchError({
        repository: n,
        code: "UNAUTHORIZED",
        originalMessage: "authentication failed for localhost:5000",
        at: new Date(),
      });
    if (n === "localhost:5000/team/crash")
      throw new Error("secret internal detail at /src/x.ts:12");
    if (n === SLOW_READ) {
      const signal = opts?.signal;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, 2_000);
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(signal.reason);
        });
      });
    }
    return { tags: ["v1", "v2"], images: new Map([["v1", info(`${APP}:v1`)]]) };
  }
  async getImage(ref: ImageRef): Promise<ImageInfo> {
    if (ref.tag === "excluded")
      throw new ImageExcludedError({
        ref: ref.toString(),
        excludedReason: "no linux/amd64 manifest",
      });
    return info(ref.toString());
  }
}

class FakeWarmer implements WarmerControl {
  prioritized: string[] = [];
  listeners = new Set<(e: TagEvent) => void>();
  async statuses(): Promise<RepositoryStatus[]> {
    return [
      {
        repository: APP,
        tagCount: 2,
        lastUpdate: new Date("2024-05-01T00:00:00Z"),
        scanning: false,
      },
      {
        repository: BROKEN,
        lastError: { code: "UNAUTHORIZED", message: "authentication failed" },
        scanning: false,
      },
    ];
  }
  async isWatched(name: ImageName): Promise<boolean> {
    if (name.toString() === SLOW) {
      await new Promise((r) => setTimeout(r, 300));
      return true;
    }
    return [APP, COLD, BROKEN, SLOW_READ, "localhost:5000/team/crash"].includes(name.toString());
  }
  requestRefresh(name: ImageName): RefreshRequestOutcome {
    this.prioritized.push(name.toString());
    return "started";
  }
  subscribe(listener: (e: TagEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(e: TagEvent): void {
    for (const l of this.listeners) l(e);
  }
}

function json(a: Answer): Record<string, unknown> {
  return JSON.parse(a.body) as Record<string, unknown>;
}

describe("API server", () => {
  const warmer = new FakeWarmer();
  let ready = true;
  let server: ApiServer;
  let port: number;
  let limited: ApiServer;
  let limitedPort: number;
  const logs: string[] = [];
  const logger = pino({ level: "debug" }, { write: (s: string) => logs.push(s) });

  before(async () => {
    const metrics = new MetricsRegistry();
    server = new ApiServer({
      registry: new FakeRegistry(),
      warmer,
      metrics,
      logger,
      apiToken: TOKEN,
      ready: async () => {
        if (!ready) throw new Error("store down");
      },
      maxBodyBytes: 100,
      rateLimit: { rps: 1000, burst: 1000 },
      eventHeartbeatMs: 100,
    });
    port = (await server.listen("127.0.0.1:0")).port;
    limited = new ApiServer({
      registry: new FakeRegistry(),
      warmer,
      metrics: new MetricsRegistry(),
      logger,
      ready: async () => {},
      rateLimit: { rps: 0.01, burst: 3 },
    });
    limitedPort = (await limited.listen("127.0.0.1:0")).port;
  });
  after(async () => {
    await server.close(1000);
    await limited.close(1000);
  });

  const auth = { authorization: `Bearer ${TOKEN}` };

  test("health and readiness need no token; readiness follows the store", async () => {
    assert.equal((await call({ port, method: "GET", path: "/healthz" })).status, 200);
    assert.equal((await call({ port, method: "GET", path: "/readyz" })).status, 200);
    ready = false;
    const down = await call({ port, method: "GET", path: "/readyz" });
    ready = true;
    assert.equal(down.status, 503);
    assert.equal(json(down).code, "STORE_UNAVAILABLE");
  });

  test("/metrics serves Prometheus text without a token", async () => {
    await call({ port, method: "GET", path: "/v1/repositories", headers: auth });
    const m = await call({ port, method: "GET", path: "/metrics" });
    assert.equal(m.status, 200);
    assert.match(String(m.headers["content-type"]), /text\/plain/);
    assert.match(m.body, /regscan_api_requests_total\{route="repositories",status="200"\}/);
  });

  test("/v1 requires the bearer token", async () => {
    const none = await call({ port, method: "GET", path: "/v1/repositories" });
    assert.equal(none.status, 401);
    assert.equal(json(none).code, "UNAUTHORIZED");
    assert.match(String(none.headers["www-authenticate"]), /^Bearer/);
    const wrong = await call({
      port,
      method: "GET",
      path: "/v1/repositories",
      headers: {
        authorization: `Bearer ${TOKEN}x`,
      },
    });
    assert.equal(wrong.status, 401);
    assert.ok(!wrong.body.includes(TOKEN));
    const basic = await call({
      port,
      method: "GET",
      path: "/v1/repositories",
      headers: { authorization: `Basic ${TOKEN}` },
    });
    assert.equal(basic.status, 401);
  });

  test("GET /v1/repositories lists statuses", async () => {
    const a = await call({ port, method: "GET", path: "/v1/repositories", headers: auth });
    assert.equal(a.status, 200);
    const body = json(a) as { repositories: Array<Record<string, unknown>> };
    assert.equal(body.repositories[0]?.name, APP);
    assert.equal(body.repositories[0]?.tagCount, 2);
    assert.equal(body.repositories[0]?.lastUpdate, "2024-05-01T00:00:00.000Z");
    assert.deepEqual(body.repositories[1]?.lastError, {
      code: "UNAUTHORIZED",
      message: "authentication failed",
    });
  });

  test("a repository by raw path or percent-encoded name", async () => {
    for (const path of [`/v1/repositories/${APP}`, `/v1/repositories/${encodeURIComponent(APP)}`]) {
      const a = await call({ port, method: "GET", path, headers: auth });
      assert.equal(a.status, 200, a.body);
      const body = json(a) as {
        name: string;
        tags: string[];
        images: Record<string, { digest: string; createdAt: string }>;
      };
      assert.equal(body.name, APP);
      assert.deepEqual(body.tags, ["v1", "v2"]);
      assert.equal(body.images.v1?.digest, "sha256:aaaa");
      assert.equal(body.images.v1?.createdAt, "2024-01-02T03:04:05.000Z");
    }
  });

  test("unwatched 404, not cached 503 with Retry-After, never succeeded 502 with its error", async () => {
    const unwatched = await call({
      port,
      method: "GET",
      path: "/v1/repositories/alpine",
      headers: auth,
    });
    assert.equal(unwatched.status, 404);
    assert.equal(json(unwatched).code, "NOT_WATCHED");
    assert.match(String(json(unwatched).message), /docker\.io\/library\/alpine/);
    const cold = await call({
      port,
      method: "GET",
      path: `/v1/repositories/${COLD}`,
      headers: auth,
    });
    assert.equal(cold.status, 503);
    assert.equal(cold.headers["retry-after"], "5");
    assert.equal(json(cold).code, "NOT_CACHED");
    const broken = await call({
      port,
      method: "GET",
      path: `/v1/repositories/${BROKEN}`,
      headers: auth,
    });
    assert.equal(broken.status, 502);
    assert.equal(json(broken).code, "UNAUTHORIZED");
    assert.match(String(json(broken).message), /authentication failed/);
  });

  test("an unexpected error is a 500 without details", async () => {
    const a = await call({
      port,
      method: "GET",
      path: "/v1/repositories/localhost:5000/team/crash",
      headers: auth,
    });
    assert.equal(a.status, 500);
    assert.equal(json(a).code, "INTERNAL");
    assert.ok(!a.body.includes("secret internal detail"));
    assert.ok(!a.body.includes(".ts"));
  });

  test("images: info, excluded, invalid reference", async () => {
    const a = await call({ port, method: "GET", path: `/v1/images/${APP}:v1`, headers: auth });
    assert.equal(a.status, 200);
    assert.equal(json(a).ref, `${APP}:v1`);
    const ex = await call({
      port,
      method: "GET",
      path: `/v1/images/${encodeURIComponent(`${APP}:excluded`)}`,
      headers: auth,
    });
    assert.equal(ex.status, 404);
    assert.equal(json(ex).excludedReason, "no linux/amd64 manifest");
    const bad = await call({ port, method: "GET", path: "/v1/images/UPPER/Case", headers: auth });
    assert.equal(bad.status, 400);
    assert.equal(json(bad).code, "INVALID_IMAGE_REF");
  });

  test("POST refresh queues a priority refresh", async () => {
    const a = await call({
      port,
      method: "POST",
      path: `/v1/repositories/${APP}/refresh`,
      headers: auth,
    });
    assert.equal(a.status, 202);
    assert.equal(json(a).refresh, "started");
    assert.deepEqual(warmer.prioritized, [APP]);
    const unwatched = await call({
      port,
      method: "POST",
      path: "/v1/repositories/alpine/refresh",
      headers: auth,
    });
    assert.equal(unwatched.status, 404);
    const wrongMethod = await call({
      port,
      method: "DELETE",
      path: `/v1/repositories/${APP}`,
      headers: auth,
    });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, "GET, HEAD, OPTIONS");
  });

  test("GET of the refresh action is 405 with Allow: POST, OPTIONS, not an unwatched repository", async () => {
    for (const method of ["GET", "HEAD"]) {
      const a = await call({
        port,
        method,
        path: `/v1/repositories/${APP}/refresh`,
        headers: auth,
      });
      assert.equal(a.status, 405, `${method}: ${a.body}`);
      assert.equal(a.headers.allow, "POST, OPTIONS");
      if (method === "GET") assert.equal(json(a).code, "METHOD_NOT_ALLOWED");
    }
    assert.equal(warmer.prioritized.filter((n) => n === APP).length, 1);
  });

  test("a client that disconnects is logged at debug, not as an error", async () => {
    const before = logs.length;
    const req = request({
      host: "127.0.0.1",
      port,
      path: `/v1/repositories/${SLOW_READ}`,
      headers: auth,
    });
    req.on("error", () => {});
    req.end();
    await new Promise((r) => setTimeout(r, 200));
    req.destroy();
    await waitFor(
      () => logs.slice(before).some((l) => l.includes("disconnected")),
      "the disconnect logged",
    );
    const lines = logs.slice(before).map((l) => JSON.parse(l) as { level: number; msg: string });
    assert.deepEqual(
      lines.filter((l) => l.level >= 40),
      [],
      "nothing at warn or error for a client that left",
    );
    assert.ok(lines.some((l) => l.level === 20 && /disconnected/.test(l.msg)));
  });

  test("request bodies are bounded", async () => {
    const a = await call({
      port,
      method: "POST",
      path: `/v1/repositories/${APP}/refresh`,
      headers: auth,
      body: "x".repeat(500),
    });
    assert.equal(a.status, 413);
    assert.equal(json(a).code, "PAYLOAD_TOO_LARGE");
  });

  test("events stream as server-sent events", async () => {
    let emitted = false;
    const { text: received, headers } = await readStream(port, "/v1/events", (text) => {
      if (!emitted && text.includes(": connected")) {
        emitted = true;
        warmer.emit({
          type: "new-tag",
          repository: APP,
          tag: "v3",
          digest: "sha256:bbbb",
          at: new Date(0),
        });
      }
      return text.includes("event: new-tag");
    });
    assert.match(String(headers["content-type"]), /text\/event-stream/);
    const data = /data: (.*)\n/.exec(received)?.[1];
    assert.ok(data);
    assert.deepEqual(JSON.parse(data), {
      type: "new-tag",
      repository: APP,
      tag: "v3",
      digest: "sha256:bbbb",
      at: "1970-01-01T00:00:00.000Z",
    });
  });

  test("unknown paths are JSON 404s", async () => {
    const a = await call({ port, method: "GET", path: "/nope", headers: auth });
    assert.equal(a.status, 404);
    assert.equal(json(a).code, "NOT_FOUND");
  });

  test("clients are rate-bounded on /v1, not on health", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push(
        (await call({ port: limitedPort, method: "GET", path: "/v1/repositories" })).status,
      );
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const last = await call({ port: limitedPort, method: "GET", path: "/v1/repositories" });
    assert.ok(Number(last.headers["retry-after"]) >= 1);
    assert.equal((await call({ port: limitedPort, method: "GET", path: "/healthz" })).status, 200);
  });

  test("no token appears in the logs", () => {
    assert.ok(!logs.join("").includes(TOKEN));
  });

  test("HEAD answers like GET without a body; OPTIONS lists the methods", async () => {
    const head = await call({
      port,
      method: "HEAD",
      path: `/v1/repositories/${APP}`,
      headers: auth,
    });
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.ok(Number(head.headers["content-length"]) > 0);
    assert.equal((await call({ port, method: "HEAD", path: "/healthz" })).status, 200);
    assert.equal((await call({ port, method: "HEAD", path: "/metrics" })).status, 200);
    const options = await call({ port, method: "OPTIONS", path: "/v1/repositories" });
    assert.equal(options.status, 204);
    assert.equal(options.headers.allow, "GET, HEAD, OPTIONS");
    const refresh = await call({
      port,
      method: "OPTIONS",
      path: `/v1/repositories/${APP}/refresh`,
    });
    assert.equal(refresh.headers.allow, "GET, HEAD, POST, OPTIONS");
    const put = await call({
      port,
      method: "PUT",
      path: `/v1/repositories/${APP}/refresh`,
      headers: auth,
    });
    assert.equal(put.status, 405);
    assert.equal(json(put).code, "METHOD_NOT_ALLOWED");
    const postEvents = await call({ port, method: "POST", path: "/v1/events", headers: auth });
    assert.equal(postEvents.status, 405);
    assert.equal(postEvents.headers.allow, "GET, OPTIONS");
  });

  test("a body over the bound closes the connection", async () => {
    const a = await call({
      port,
      method: "POST",
      path: `/v1/repositories/${APP}/refresh`,
      headers: auth,
      body: "x".repeat(500),
    });
    assert.equal(a.status, 413);
    assert.equal(a.headers.connection, "close");
  });

  test("an event stream's subscription ends when its client goes", async () => {
    const before = warmer.listeners.size;
    const { text: heartbeats, headers } = await readStream(port, "/v1/events", (text) =>
      text.includes(": heartbeat"),
    );
    assert.equal(headers["cache-control"], "no-cache");
    assert.match(heartbeats, /^retry: \d+\n: connected\n\n/);
    await waitFor(() => warmer.listeners.size === before, "listener removed");
  });

  test("a client gone while its stream is being checked leaves no subscription", async () => {
    const before = warmer.listeners.size;
    const req = request({
      host: "127.0.0.1",
      port,
      path: `/v1/events?repository=${encodeURIComponent(SLOW)}`,
      headers: auth,
    });
    req.on("error", () => {});
    req.end();
    await new Promise((r) => setTimeout(r, 100));
    req.destroy();
    // The watch check answers at 300 ms; give the server time to get past it.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(warmer.listeners.size, before);
  });

  test("every request is counted by route and status, dropped event streams and errors too", async () => {
    await call({ port, method: "GET", path: "/v1/repositories/alpine", headers: auth });
    await call({ port, method: "GET", path: "/nope", headers: auth });
    await readStream(port, "/v1/events", (text) => text.includes(": connected"));
    const text = (await call({ port, method: "GET", path: "/metrics" })).body;
    assert.match(text, /regscan_api_requests_total\{route="repository",status="404"\} [1-9]/);
    assert.match(text, /regscan_api_requests_total\{route="unknown",status="404"\} [1-9]/);
    // The server learns of the dropped stream a moment after the client dropped it.
    let metrics = "";
    await waitFor(
      () => /route="events",status="200"\} [1-9]/.test(metrics),
      "stream counted",
      async () => {
        metrics = (await call({ port, method: "GET", path: "/metrics" })).body;
      },
    );
  });

  test("without a token, /v1 is rate-bounded too", async () => {
    const guarded = new ApiServer({
      registry: new FakeRegistry(),
      warmer,
      metrics: new MetricsRegistry(),
      logger,
      apiToken: TOKEN,
      ready: async () => {},
      rateLimit: { rps: 0.01, burst: 2 },
    });
    const guardedPort = (await guarded.listen("127.0.0.1:0")).port;
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++)
        statuses.push(
          (await call({ port: guardedPort, method: "GET", path: "/v1/repositories" })).status,
        );
      assert.deepEqual(statuses, [401, 401, 429, 429]);
    } finally {
      await guarded.close(1000);
    }
  });
});

/**
 * Reads an event stream with the token until `done(textSoFar)` is true, then disconnects.
 * Fails on a status other than 200.
 */
function readStream(
  port: number,
  path: string,
  done: (text: string) => boolean,
): Promise<{ text: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${TOKEN}` };
    const req = request({ host: "127.0.0.1", port, path, headers }, (res) => {
      if (res.statusCode !== 200) {
        req.destroy();
        reject(new Error(`status ${res.statusCode}`));
        return;
      }
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        text += d;
        if (done(text)) {
          req.destroy();
          resolve({ text, headers: res.headers });
        }
      });
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`nothing expected on ${path}`)));
    req.end();
  });
}

async function waitFor(
  check: () => boolean,
  what: string,
  refresh: () => Promise<void> = async () => {},
): Promise<void> {
  const deadline = Date.now() + 5_000;
  await refresh();
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
    await refresh();
  }
}
