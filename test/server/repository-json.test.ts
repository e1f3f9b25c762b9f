/**
 * A repository's JSON laid out for writing (json-forms.ts): the slices, the Buffer and the
 * announced length are byte for byte `JSON.stringify(repositoryJson(...))` and a newline,
 * whatever the tags, labels and references hold, and whether or not tags share an image;
 * and the API writes an answer over its cache's bound out as it is produced.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import type { ImageInfo, RepositoryMetadata } from "../../src/image/info.js";
import { parseImageName, parseImageRef } from "../../src/image/ref.js";
import type { Registry } from "../../src/registry/registry.js";
import { ApiServer } from "../../src/server/api-server.js";
import {
  layoutRepositoryJson,
  repositoryJson,
  repositoryJsonBuffer,
} from "../../src/server/json-forms.js";
import type { WarmerControl } from "../../src/server/warmer-control.js";
import { withoutUndefined } from "../../src/without-undefined.js";

const NAME = "localhost:5000/team/app";

function shared(i: number): Omit<ImageInfo, "ref"> {
  const labels: Record<string, string> = {
    maintainer: `Zoë ${i} <z@example.com>`,
    'a"b': "\u2028x",
  };
  Object.defineProperty(labels, "__proto__", { value: "kept", enumerable: true });
  return withoutUndefined<Omit<ImageInfo, "ref">>({
    digest: `sha256:${String(i).padStart(64, "0")}`,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    createdAt: new Date(Date.UTC(2024, 0, 1 + i)),
    labels: Object.freeze(labels),
    annotations:
      i % 2 === 0 ? Object.freeze({ "org.opencontainers.image.source": "x" }) : undefined,
    platformDigest: i % 3 === 0 ? `sha256:${"f".repeat(64)}` : undefined,
    indexAnnotations: i % 3 === 0 ? {} : undefined,
    platform: { os: "linux", architecture: "arm64", variant: "v8" },
    platforms: [{ os: "linux", architecture: "arm64", variant: "v8" }],
    lastFetched: i % 4 === 0 ? undefined : new Date(Date.UTC(2026, 0, 1)),
  });
}

/** `tags` tags over `images` images; every fifth tag is its own copy of its image's info. */
function metadata(tags: number, images: number): RepositoryMetadata {
  const name = parseImageName(NAME);
  const bases = Array.from({ length: images }, (_, i) => shared(i));
  const all = ["__proto__", "ünïcode-is-not-a-tag-but-kept"];
  for (let t = 0; all.length < tags; t++) all.push(`v1.${t}`);
  const map = new Map<string, ImageInfo>();
  all.forEach((tag, t) => {
    const base = bases[t % images] as Omit<ImageInfo, "ref">;
    const info: ImageInfo = { ...base, ref: name.withTag(tag) };
    // A decorator's copy: same JSON, objects of its own, a time of its own.
    if (t % 5 === 0) map.set(tag, { ...info, labels: { ...base.labels }, createdAt: new Date(0) });
    else map.set(tag, info);
  });
  // A reference that is not `name:tag` (what a decorator may answer), and a tag with no image.
  map.set("by-digest", {
    ...(bases[0] as Omit<ImageInfo, "ref">),
    ref: parseImageRef(`${NAME}@sha256:${"a".repeat(64)}`),
  });
  return { tags: [...all, "by-digest", "no-image"], images: map };
}

const expected = (meta: RepositoryMetadata) =>
  Buffer.from(`${JSON.stringify(repositoryJson(NAME, meta))}\n`, "utf8");

describe("repository JSON layout", () => {
  test("slices, buffer and length are the JSON of repositoryJson, byte for byte", async () => {
    for (const [tags, images] of [
      [3, 1],
      [2_000, 7],
      [500, 500],
    ] as const) {
      const meta = metadata(tags, images);
      const want = expected(meta);
      const layout = await layoutRepositoryJson(NAME, meta);
      assert.equal(layout.byteLength, want.length, `${tags}/${images}: length`);
      assert.ok(want.equals(await repositoryJsonBuffer(layout)), `${tags}/${images}: buffer`);
      const sliced = [...layout.slices(1_000)];
      assert.ok(sliced.length > (tags > 100 ? 10 : 0), `${tags}/${images}: sliced`);
      assert.ok(want.equals(Buffer.from(sliced.join(""), "utf8")), `${tags}/${images}: slices`);
    }
  });

  test("an empty repository", async () => {
    const meta: RepositoryMetadata = { tags: [], images: new Map() };
    const layout = await layoutRepositoryJson(NAME, meta);
    assert.equal(Buffer.from([...layout.slices()].join("")).toString(), expected(meta).toString());
    assert.equal(layout.byteLength, expected(meta).length);
  });

  test("a layout keeps far less than the text when tags share images", async () => {
    const meta = metadata(20_000, 20);
    const layout = await layoutRepositoryJson(NAME, meta);
    assert.ok(
      layout.retainedBytes * 4 < layout.byteLength,
      `${layout.retainedBytes} retained for ${layout.byteLength} bytes of text`,
    );
  });
});

describe("a repository answer over the answer cache's bound", () => {
  const name = parseImageName(NAME);
  const meta = metadata(3_000, 5);
  let reads = 0;
  const registry: Registry = {
    async getImageRepositoryMetadata() {
      reads++;
      return meta;
    },
    async getImage(): Promise<ImageInfo> {
      throw new Error("not asked");
    },
  };
  const warmer: WarmerControl = {
    statuses: async () => [],
    isWatched: async (n) => n.equals(name),
    requestRefresh: () => "started",
    subscribe: () => () => {},
  };
  let server: ApiServer;
  let port: number;
  before(async () => {
    server = new ApiServer({
      registry,
      warmer,
      metrics: new MetricsRegistry(),
      logger: pino({ level: "silent" }),
      ready: async () => {},
      repositoryState: async () => ({ version: "v1" }),
      // Far under the answer's size: it is written out as it is produced, never held.
      repositoryCacheBytes: 256 * 1024,
    });
    port = (await server.listen("127.0.0.1:0")).port;
  });
  after(() => server.close(1000));

  const get = (method: string) =>
    new Promise<{ status: number; length: string | undefined; body: Buffer }>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, method, path: `/v1/repositories/${encodeURIComponent(NAME)}` },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              length: res.headers["content-length"],
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      req.on("error", reject);
      req.setTimeout(20_000, () => req.destroy(new Error("timeout")));
      req.end();
    });

  test("is streamed with its exact length, the same bytes to every reader", async () => {
    const want = expected(meta);
    assert.ok(want.length > 4 * 256 * 1024, `${want.length} bytes`);
    const answers = await Promise.all([get("GET"), get("GET"), get("GET")]);
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.equal(a.length, String(want.length));
      assert.ok(want.equals(a.body), "the body is repositoryJson's, byte for byte");
    }
    const head = await get("HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.length, String(want.length));
    assert.equal(head.body.length, 0);
    // Its layout (far smaller than the text) is kept for the version: no read after the first.
    assert.equal(reads, 1);
  });
});
