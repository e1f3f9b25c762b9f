/**
 * The API server's limits on what clients can hold: slow and idle connections are closed
 * after their timeouts, and expensive answers are built a bounded number at once (503
 * `SERVER_BUSY` with `Retry-After` past the queue) and once per repository record version.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { after, describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { Keys } from "../../src/cache/keys.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import type { ImageInfo, RepositoryMetadata } from "../../src/image/info.js";
import {
  type ImageName,
  type ImageRef,
  parseImageName,
  parseImageRef,
} from "../../src/image/ref.js";
import type { Registry } from "../../src/registry/registry.js";
import { ApiServer, type ApiServerOptions } from "../../src/server/api-server.js";
import type { RecordNoticeListener, RecordNoticeSource } from "../../src/server/record-notices.js";
import { SharedAnswers } from "../../src/server/shared-answers.js";
import type {
  RefreshRequestOutcome,
  RepositoryStatus,
  TagEvent,
  WarmerControl,
} from "../../src/server/warmer-control.js";

const REPO = "localhost:5000/team/app";

/** A cache whose repository reads wait until released, counting them. */
class GatedRegistry implements Registry {
  reads = 0;
  #waiting: Array<() => void> = [];
  hold = true;
  async getImageRepositoryMetadata(name: ImageName): Promise<RepositoryMetadata> {
    this.reads++;
    if (this.hold) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    const tag = "v1";
    const info: ImageInfo = {
      ref: parseImageRef(`${name.toString()}:${tag}`),
      digest: "sha256:aaaa",
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      labels: {},
      platforms: [],
    };
    return { tags: [tag], images: new Map([[tag, info]]) };
  }
  async getImage(ref: ImageRef): Promise<ImageInfo> {
    throw new Error(`not used: ${ref.toString()}`);
  }
  releaseAll(): void {
    this.hold = false;
    for (const r of this.#waiting.splice(0)) r();
  }
  get waitingCount(): number {
    return this.#waiting.length;
  }
}

const warmer: WarmerControl = {
  async statuses(): Promise<RepositoryStatus[]> {
    return [];
  },
  async isWatched(): Promise<boolean> {
    return true;
  },
  requestRefresh(): RefreshRequestOutcome {
    return "started";
  },
  subscribe(_listener: (e: TagEvent) => void): () => void {
    return () => {};
  },
};

const servers: ApiServer[] = [];
after(async () => {
  for (const s of servers) await s.close(500);
});

async function start(
  registry: Registry,
  extra: Partial<ApiServerOptions> = {},
): Promise<{ server: ApiServer; port: number }> {
  const server = new ApiServer({
    registry,
    warmer,
    metrics: new MetricsRegistry(),
    logger: pino({ level: "silent" }),
    ready: async () => {},
    rateLimit: { rps: 10_000, burst: 10_000 },
    ...extra,
  });
  servers.push(server);
  return { server, port: (await server.listen("127.0.0.1:0")).port };
}

function get(
  port: number,
  path: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout on ${path}`)));
    req.end();
  });
}

/** A replica's API sharing its answers through `store`, its record at `version()`. */
async function sharingReplica(
  registry: Registry,
  store: MemoryStore,
  version: () => string,
): Promise<{ port: number; metrics: MetricsRegistry }> {
  const metrics = new MetricsRegistry();
  const sharedAnswers = new SharedAnswers({
    store,
    variant: "same-config",
    metrics,
    logger: pino({ level: "silent" }),
  });
  const { port } = await start(registry, {
    repositoryState: async () => ({ version: version() }),
    sharedAnswers,
    metrics,
  });
  return { port, metrics };
}

/** A request's answer as bytes, as they came (no decoding). */
function getBytes(
  port: number,
  path: string,
  headers: Record<string, string>,
  method = "GET",
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout on ${path}`)));
    req.end();
  });
}

/** Resolves with how long the socket stayed open (ms), or -1 if still open after `maxMs`. */
function closedWithin(socket: Socket, maxMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(-1), maxMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

async function untilAsync(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("API server limits", () => {
  test("a client that never finishes its headers, or sends nothing, is closed", async () => {
    const { port } = await start(new GatedRegistry(), {
      limits: { headersTimeoutMs: 500, requestTimeoutMs: 1_000, keepAliveTimeoutMs: 500 },
    });
    const slow = connect({ host: "127.0.0.1", port });
    // Reading, so that the server's closing (after its 408) is seen.
    slow.resume();
    slow.on("error", () => {});
    slow.on("connect", () => slow.write("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    const silent = connect({ host: "127.0.0.1", port });
    silent.resume();
    silent.on("error", () => {});
    const [slowMs, silentMs] = await Promise.all([
      closedWithin(slow, 4_000),
      closedWithin(silent, 4_000),
    ]);
    console.log(
      `# headers timeout 500 ms: slow headers closed after ${slowMs} ms, silent after ${silentMs} ms`,
    );
    assert.ok(slowMs > 0, "a client dripping its headers is closed");
    assert.ok(silentMs > 0, "a client that sends nothing is closed");
    slow.destroy();
    silent.destroy();
  });

  test("expensive answers: a bounded number at once, a bounded queue, then 503 with Retry-After", async () => {
    const registry = new GatedRegistry();
    const { port } = await start(registry, { limits: { heavyConcurrency: 2, heavyQueue: 2 } });
    const names = Array.from({ length: 6 }, (_, i) => `${REPO}${i}`);
    const answers = names.map((n) => get(port, `/v1/repositories/${n}`));
    await until(() => registry.waitingCount === 2, "two builds running");
    // Two run, two wait; the other two are refused at once, and health is unaffected.
    const health = await get(port, "/healthz");
    assert.equal(health.status, 200);
    registry.releaseAll();
    const done = await Promise.all(answers);
    const statuses = done.map((a) => a.status).sort();
    assert.deepEqual(statuses, [200, 200, 200, 200, 503, 503]);
    const busy = done.find((a) => a.status === 503);
    assert.equal(busy?.headers["retry-after"], "1");
    assert.equal((JSON.parse(busy?.body ?? "{}") as { code?: string }).code, "SERVER_BUSY");
  });

  test("small repositories (by their stored tag count) are built without a heavy turn", async () => {
    const registry = new GatedRegistry();
    const { port } = await start(registry, {
      // Six distinct repositories, two small and four large.
      repositoryState: async (name) => ({
        version: "1",
        tags: /[01]$/.test(name.toString()) ? 100 : 5_000,
      }),
      limits: { heavyConcurrency: 1, heavyQueue: 1 },
    });
    const names = Array.from({ length: 6 }, (_, i) => `${REPO}${i}`);
    let answered = 0;
    const answers = names.map((n) =>
      get(port, `/v1/repositories/${n}`).finally(() => {
        answered++;
      }),
    );
    // Both small builds and one large one run; one large waits; two are refused. The builds
    // are released only once the refusals are back: a request that arrived after a release
    // would find room and be answered.
    await until(() => registry.waitingCount === 3 && answered === 2, "three builds, two refusals");
    registry.releaseAll();
    const done = await Promise.all(answers);
    assert.deepEqual(
      done.slice(0, 2).map((a) => a.status),
      [200, 200],
      "the small ones",
    );
    // Which large ones were refused depends on arrival order; how many does not.
    assert.deepEqual(
      done
        .slice(2)
        .map((a) => a.status)
        .sort(),
      [200, 200, 503, 503],
    );
  });

  test("small repositories' answers are bounded by their tags at once, and wait rather than fail", async () => {
    const registry = new GatedRegistry();
    const { port } = await start(registry, {
      repositoryState: async () => ({ version: "1", tags: 100 }),
      // Two 100-tag builds fit; a third waits. No heavy turn is involved.
      limits: { smallAnswerTags: 250, heavyConcurrency: 1, heavyQueue: 0 },
    });
    const names = Array.from({ length: 6 }, (_, i) => `${REPO}${i}`);
    const answers = names.map((n) => get(port, `/v1/repositories/${n}`));
    await until(() => registry.waitingCount === 2, "two builds running");
    // Long enough for a third build to have started were it let in.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(registry.reads, 2, "two builds at once, the rest waiting");
    registry.releaseAll();
    const done = await Promise.all(answers);
    assert.deepEqual(
      done.map((a) => a.status),
      [200, 200, 200, 200, 200, 200],
      "every waiting answer is built in turn, none refused",
    );
    assert.equal(registry.reads, 6);
  });

  test("a repository without a stored record is NOT_CACHED at once, without a build", async () => {
    const registry = new GatedRegistry();
    const { port } = await start(registry, {
      repositoryState: async () => undefined,
      limits: { heavyConcurrency: 1, heavyQueue: 0 },
    });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => get(port, `/v1/repositories/${REPO}${i}`)),
    );
    for (const a of answers) {
      assert.equal(a.status, 503);
      assert.equal((JSON.parse(a.body) as { code?: string }).code, "NOT_CACHED");
      assert.equal(a.headers["retry-after"], "5");
    }
    assert.equal(registry.reads, 0, "no build was started");
  });

  test("a repository's JSON is built once per record version, however many ask", async () => {
    const registry = new GatedRegistry();
    let version = "1";
    const metrics = new MetricsRegistry();
    const { port } = await start(registry, {
      repositoryState: async () => ({ version }),
      limits: { heavyConcurrency: 1, heavyQueue: 0 },
      metrics,
    });
    const answered = async () => {
      const got = await metrics.getSingleMetric("regscan_api_repository_answers_total")?.get();
      return Object.fromEntries((got?.values ?? []).map((v) => [v.labels.source, v.value]));
    };
    const first = Array.from({ length: 20 }, () => get(port, `/v1/repositories/${REPO}`));
    await until(() => registry.waitingCount === 1, "the build");
    registry.releaseAll();
    const answers = await Promise.all(first);
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(new Set(answers.map((a) => a.body)).size, 1);
    assert.equal(registry.reads, 1, "one build for twenty readers");
    await get(port, `/v1/repositories/${REPO}`);
    assert.equal(registry.reads, 1, "served from the cache while the version holds");
    // Readers that came before the build ended shared it; the rest found it kept.
    const firstCount = await answered();
    assert.equal(firstCount.built, 1);
    assert.equal((firstCount.shared ?? 0) + (firstCount.kept ?? 0), 20, JSON.stringify(firstCount));
    version = "2";
    // The version is read again at most once a second.
    await new Promise((r) => setTimeout(r, 1_100));
    const after = await get(port, `/v1/repositories/${REPO}`);
    assert.equal(after.status, 200);
    assert.equal(registry.reads, 2, "rebuilt for a new version");
    assert.deepEqual(await answered(), { ...firstCount, built: 2 });
  });

  test("a replica serves the answer another built, shared through the store, for its version only", async () => {
    const registry = new GatedRegistry();
    registry.releaseAll();
    let version = "1";
    const store = new MemoryStore();
    const replica = async () => {
      const { port, metrics } = await sharingReplica(registry, store, () => version);
      const answered = async () => {
        const got = await metrics.getSingleMetric("regscan_api_repository_answers_total")?.get();
        return Object.fromEntries((got?.values ?? []).map((v) => [v.labels.source, v.value]));
      };
      return { port, answered };
    };
    const [a, b] = [await replica(), await replica()];
    const key = new Keys().answer(parseImageName(REPO));
    const written = async () => (await store.get(key)) !== undefined;
    const first = await get(a.port, `/v1/repositories/${REPO}`);
    assert.equal(first.status, 200);
    assert.equal(registry.reads, 1);
    await untilAsync(written, "replica a's answer written");
    // Replica b keeps nothing yet: the shared answer, fetched with the record's version.
    const fromStore = await get(b.port, `/v1/repositories/${REPO}`);
    assert.equal(fromStore.body, first.body);
    assert.equal(registry.reads, 1, "replica b built nothing");
    await get(b.port, `/v1/repositories/${REPO}`);
    assert.deepEqual(await b.answered(), { stored: 1, kept: 1 });
    // A new version: b keeps the old one's answer, reads the shared one after the record,
    // finds it stale and builds; a then serves b's build.
    version = "2";
    await store.set(key, new Date(Date.now() + 60_000), Buffer.from("not an answer"));
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal((await get(b.port, `/v1/repositories/${REPO}`)).status, 200);
    assert.equal(registry.reads, 2);
    assert.deepEqual(await b.answered(), { stored: 1, kept: 1, built: 1 });
    await untilAsync(async () => {
      const value = (await store.get(key))?.value;
      return value !== undefined && Buffer.from(value).subarray(0, 4).toString() === "RSA2";
    }, "replica b's answer written over the value that was not one");
    assert.equal((await get(a.port, `/v1/repositories/${REPO}`)).status, 200);
    assert.equal(registry.reads, 2, "replica a built nothing for version 2");
    assert.deepEqual(await a.answered(), { built: 1, stored: 1 });
  });

  test("answers kept gzip-compressed go out as they are to clients that accept gzip, unzipped to others", async () => {
    const registry = new GatedRegistry();
    registry.releaseAll();
    const store = new MemoryStore();
    const replica = async () => (await sharingReplica(registry, store, () => "1")).port;
    const [a, b] = [await replica(), await replica()];
    const path = `/v1/repositories/${REPO}`;
    const gzip = { "accept-encoding": "gzip, deflate, br" };
    // Built by a, answered unencoded (as built) even to a client that accepts gzip.
    const first = await getBytes(a, path, gzip);
    assert.equal(first.status, 200);
    assert.equal(first.headers["content-encoding"], undefined);
    assert.equal(first.headers.vary, "accept-encoding");
    const text = first.body.toString("utf8");
    const key = new Keys().answer(parseImageName(REPO));
    await untilAsync(async () => (await store.get(key)) !== undefined, "a's answer shared");
    for (const port of [b, a]) {
      // b from the store, a from its cache once its answer was shared: both as gzip.
      const zipped = await getBytes(port, path, gzip);
      assert.equal(zipped.status, 200);
      assert.equal(zipped.headers["content-encoding"], "gzip", `port ${port}`);
      assert.equal(zipped.headers.vary, "accept-encoding");
      assert.equal(Number(zipped.headers["content-length"]), zipped.body.length);
      assert.equal(gunzipSync(zipped.body).toString("utf8"), text);
      for (const headers of [{}, { "accept-encoding": "gzip;q=0, identity" }]) {
        const plain = await getBytes(port, path, headers);
        assert.equal(plain.headers["content-encoding"], undefined, JSON.stringify(headers));
        assert.equal(Number(plain.headers["content-length"]), plain.body.length);
        assert.equal(plain.body.toString("utf8"), text);
      }
      const head = await getBytes(port, path, gzip, "HEAD");
      assert.equal(head.headers["content-encoding"], "gzip");
      assert.equal(head.headers["content-length"], zipped.headers["content-length"]);
      assert.equal(head.body.length, 0);
    }
    assert.equal(registry.reads, 1, "one build in all");
  });

  test("while record notices arrive, a state is shared past the second and forgotten on its record's notice", async () => {
    const registry = new GatedRegistry();
    registry.releaseAll();
    let live = true;
    let listener: RecordNoticeListener | undefined;
    let closed = false;
    const recordNotices: RecordNoticeSource = {
      live: () => live,
      subscribe(l) {
        listener = l;
        return () => {
          listener = undefined;
        };
      },
      close() {
        closed = true;
      },
    };
    let stateReads = 0;
    const { server, port } = await start(registry, {
      repositoryState: async () => {
        stateReads++;
        return { version: "1" };
      },
      recordNotices,
    });
    const path = `/v1/repositories/${REPO}`;
    assert.equal((await get(port, path)).status, 200);
    assert.equal(stateReads, 1);
    await new Promise((r) => setTimeout(r, 1_100));
    await get(port, path);
    assert.equal(stateReads, 1, "shared past the second while notices arrive");
    listener?.written(REPO);
    await get(port, path);
    assert.equal(stateReads, 2, "read again after its record's notice");
    listener?.written("localhost:5000/team/other");
    listener?.reset();
    await get(port, path);
    assert.equal(stateReads, 3, "read again after a reset");
    live = false;
    await new Promise((r) => setTimeout(r, 1_100));
    await get(port, path);
    assert.equal(stateReads, 4, "read each second again once notices stop");
    assert.equal(registry.reads, 1, "one build: the version never changed");
    const metrics = (await get(port, "/metrics")).body;
    assert.match(metrics, /^regscan_api_record_notices_live 0$/m);
    live = true;
    assert.match((await get(port, "/metrics")).body, /^regscan_api_record_notices_live 1$/m);
    await server.close(500);
    assert.ok(closed, "the server closes its notices");
    assert.equal(listener, undefined);
  });

  test("a tag event makes the next read read the record again, within the second", async () => {
    const registry = new GatedRegistry();
    registry.releaseAll();
    let version = "1";
    let stateReads = 0;
    const listeners = new Set<(e: TagEvent) => void>();
    const { port } = await start(registry, {
      repositoryState: async () => {
        stateReads++;
        return { version };
      },
      warmer: {
        ...warmer,
        subscribe(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      },
    });
    assert.equal((await get(port, `/v1/repositories/${REPO}`)).status, 200);
    assert.equal(registry.reads, 1);
    version = "2";
    await get(port, `/v1/repositories/${REPO}`);
    assert.equal(registry.reads, 1, "within the second, the state read before is used");
    // The scan that wrote version 2 sends its events once the record is written.
    for (const listener of listeners) {
      listener({
        type: "new-tag",
        repository: REPO,
        tag: "v2",
        digest: "sha256:bbbb",
        at: new Date(),
      });
    }
    const readsBefore = stateReads;
    const after = await get(port, `/v1/repositories/${REPO}`);
    assert.equal(after.status, 200);
    assert.equal(stateReads, readsBefore + 1, "the record was read again");
    assert.equal(registry.reads, 2, "and the answer rebuilt for its new version");
  });
});
