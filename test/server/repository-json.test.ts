/**
 * A repository's JSON written from a stream of its images (repository-answer.ts): the
 * pieces, the Buffer and the layout (with its announced length) are byte for byte
 * `JSON.stringify(repositoryJson(...))` and a newline, whatever the tags, labels and
 * references hold, however the images are sliced, and whether or not tags share an image;
 * and the API writes an answer over its cache's bound from its layout, or, when that is too
 * large as well, as it is read, cutting it off when a read fails midway.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import type { ImageInfo, RepositoryMetadata } from "../../src/image/info.js";
import { parseImageName, parseImageRef } from "../../src/image/ref.js";
import type { Registry } from "../../src/registry/registry.js";
import {
  type RepositoryStream,
  streamOfMetadata,
  type TaggedImage,
} from "../../src/registry/repository-stream.js";
import { ApiServer } from "../../src/server/api-server.js";
import { repositoryJson } from "../../src/server/json-forms.js";
import {
  buildRepositoryAnswer,
  type RepositoryJsonLayout,
  repositoryJsonPieces,
} from "../../src/server/repository-answer.js";
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

const expected = (meta: RepositoryMetadata, name = NAME) =>
  Buffer.from(`${JSON.stringify(repositoryJson(name, meta))}\n`, "utf8");

/** `meta` as a stream of slices of `size` images, whatever size its reader asks for. */
function sliced(meta: RepositoryMetadata, size: number): RepositoryStream {
  return {
    tags: meta.tags,
    async *images() {
      const all = [...meta.images];
      for (let at = 0; at < all.length; at += size) yield all.slice(at, at + size);
    },
  };
}

async function joined(pieces: Iterable<string> | AsyncIterable<string>) {
  const all: string[] = [];
  for await (const piece of pieces) all.push(piece);
  return { text: Buffer.from(all.join(""), "utf8"), count: all.length };
}

const UNBOUNDED = { maxBytes: Number.POSITIVE_INFINITY, maxLayoutChars: 0 };
const LAYOUT_ONLY = { maxBytes: 0, maxLayoutChars: Number.POSITIVE_INFINITY };

async function layoutOf(stream: RepositoryStream): Promise<RepositoryJsonLayout> {
  const built = await buildRepositoryAnswer(NAME, stream, LAYOUT_ONLY);
  assert.ok(built !== undefined && "slices" in built, "a layout");
  return built;
}

describe("repository JSON from a stream of images", () => {
  test("pieces, buffer and layout are the JSON of repositoryJson, byte for byte", async () => {
    for (const [tags, images, slice] of [
      [3, 1, 1_024],
      [2_000, 7, 1],
      [2_000, 7, 333],
      [500, 500, 64],
      // More distinct images than are remembered while writing.
      [5_000, 5_000, 1_024],
    ] as const) {
      const meta = metadata(tags, images);
      const want = expected(meta);
      const what = `${tags}/${images} by ${slice}`;
      const pieces = await joined(repositoryJsonPieces(NAME, sliced(meta, slice), 1_000));
      assert.ok(pieces.count > (tags > 100 ? 10 : 0), `${what}: pieces`);
      assert.ok(want.equals(pieces.text), `${what}: pieces`);
      const text = await buildRepositoryAnswer(NAME, sliced(meta, slice), UNBOUNDED);
      assert.ok(Array.isArray(text) && want.equals(Buffer.concat(text)), `${what}: text`);
      assert.ok(tags < 1_000 || (text?.length ?? 0) > 10, `${what}: text in pieces`);
      const whole = await buildRepositoryAnswer(NAME, streamOfMetadata(meta), UNBOUNDED);
      assert.ok(Array.isArray(whole) && want.equals(Buffer.concat(whole)), `${what}: whole`);
      const layout = await layoutOf(sliced(meta, slice));
      assert.equal(layout.byteLength, want.length, `${what}: layout length`);
      const laid = await joined(layout.slices(1_000));
      assert.ok(laid.count > (tags > 100 ? 10 : 0), `${what}: layout slices`);
      assert.ok(want.equals(laid.text), `${what}: layout`);
    }
  });

  test("an empty repository", async () => {
    const meta: RepositoryMetadata = { tags: [], images: new Map() };
    const text = await buildRepositoryAnswer(NAME, streamOfMetadata(meta), UNBOUNDED);
    assert.ok(Array.isArray(text));
    assert.equal(Buffer.concat(text).toString(), expected(meta).toString());
    const layout = await layoutOf(streamOfMetadata(meta));
    assert.equal((await joined(layout.slices())).text.toString(), expected(meta).toString());
    assert.equal(layout.byteLength, expected(meta).length);
  });

  test("a layout keeps far less than the text when tags share images", async () => {
    const layout = await layoutOf(streamOfMetadata(metadata(20_000, 20)));
    assert.ok(
      layout.retainedBytes * 4 < layout.byteLength,
      `${layout.retainedBytes} retained for ${layout.byteLength} bytes of text`,
    );
  });

  test("a build stops as soon as its answer is neither within the text nor the layout bound", async () => {
    const meta = metadata(3_000, 3_000);
    const want = expected(meta);
    let slicesRead = 0;
    const counted: RepositoryStream = {
      tags: meta.tags,
      async *images() {
        for await (const slice of sliced(meta, 100).images()) {
          slicesRead++;
          yield slice;
        }
      },
    };
    const exact = await buildRepositoryAnswer(NAME, counted, {
      maxBytes: want.length,
      maxLayoutChars: 0,
    });
    assert.ok(Array.isArray(exact) && want.equals(Buffer.concat(exact)));
    assert.equal(slicesRead, Math.ceil(meta.images.size / 100));
    // A tenth of the text, either way.
    const tight = { maxBytes: want.length / 10, maxLayoutChars: want.length / 10 };
    slicesRead = 0;
    assert.equal(await buildRepositoryAnswer(NAME, counted, tight), undefined);
    assert.ok(slicesRead <= 5, `${slicesRead} slices read for a tenth of the text`);
    // Over the text bound, within the layout's: a layout of the same bytes.
    const laid = await buildRepositoryAnswer(NAME, counted, {
      maxBytes: want.length - 1,
      maxLayoutChars: want.length,
    });
    assert.ok(laid !== undefined && "slices" in laid);
    assert.ok(want.equals((await joined(laid.slices())).text));
  });
});

describe("a repository answer over the answer cache's bound", () => {
  /** NAME: few images (its layout is small); NAME-*: as many images as tags. */
  const few = metadata(3_000, 5);
  const many = metadata(3_000, 3_000);
  const metaOf = (name: string) => (name.startsWith(`${NAME}-`) ? many : few);
  let streams = 0;
  /** The slice after which reads fail (none: never). */
  let failAfter: number | undefined;
  const registry: Registry = {
    async getImageRepositoryMetadata() {
      throw new Error("not asked: the stream is");
    },
    async streamImageRepository(name) {
      streams++;
      const meta = metaOf(name.toString());
      const all = [...meta.images];
      return {
        tags: meta.tags,
        async *images(): AsyncGenerator<readonly TaggedImage[]> {
          for (let at = 0, n = 0; at < all.length; at += 100, n++) {
            if (failAfter !== undefined && n >= failAfter) {
              throw new Error("the store went away");
            }
            yield all.slice(at, at + 100);
          }
        },
      };
    },
    async getImage(): Promise<ImageInfo> {
      throw new Error("not asked");
    },
  };
  const warmer: WarmerControl = {
    statuses: async () => [],
    isWatched: async (n) => n.toString().startsWith(NAME),
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
      logger: pino({ level: process.env.DEBUG_TEST ? "debug" : "silent" }),
      ready: async () => {},
      // NAME-listed: a record with its listing's length, as the daemon's store gives.
      repositoryState: async (name) =>
        name.toString() === `${NAME}-listed` ? { version: "v1", tags: 3_000 } : { version: "v1" },
      // Far under the answers' size: they are written out as they are produced, never held.
      repositoryCacheBytes: 256 * 1024,
    });
    port = (await server.listen("127.0.0.1:0")).port;
  });
  after(() => server.close(1000));

  interface Got {
    status: number;
    length: string | undefined;
    encoding: string | undefined;
    body: Buffer;
  }
  const get = (method: string, path = NAME) =>
    new Promise<Got>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, method, path: `/v1/repositories/${encodeURIComponent(path)}` },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              length: res.headers["content-length"],
              encoding: res.headers["transfer-encoding"],
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      req.on("error", reject);
      req.setTimeout(20_000, () => req.destroy(new Error("timeout")));
      req.end();
    });

  test("over few images: written from its layout with its length, one build for every reader", async () => {
    const want = expected(few);
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
    assert.equal(streams, 1);
  });

  test("over as many images: streamed as it is read, chunked, the same bytes to every reader", async () => {
    streams = 0;
    const path = `${NAME}-1`;
    const want = expected(many, path);
    const answers = await Promise.all([get("GET", path), get("GET", path), get("GET", path)]);
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.equal(a.length, undefined);
      assert.equal(a.encoding, "chunked");
      assert.ok(want.equals(a.body), "the body is repositoryJson's, byte for byte");
    }
    // One build found the answer too large (and stopped), then each reader streamed it.
    assert.equal(streams, 4);
    const head = await get("HEAD", path);
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    // Known too large for this version: streamed at once, no second build.
    await get("GET", path);
    assert.equal(streams, 6);
  });

  test("a HEAD of a listed repository whose body is not kept answers without building it", async () => {
    const path = `${NAME}-listed`;
    const before = streams;
    const head = await get("HEAD", path);
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(streams, before, "no read of its images for a HEAD");
    // A GET builds and streams it as before.
    const got = await get("GET", path);
    assert.ok(expected(many, path).equals(got.body));
    assert.ok(streams > before);
  });

  test("a read failing midway cuts the answer off: no reader takes it for whole", async () => {
    failAfter = 20;
    try {
      // The build passes both bounds within a few slices first: the answer is streamed.
      await assert.rejects(get("GET", `${NAME}-2`), /aborted|ECONNRESET|socket hang up/);
      failAfter = 0;
      // A failure before the first byte still gets its error answer.
      const early = await get("GET", `${NAME}-3`);
      assert.equal(early.status, 500);
      assert.match(early.body.toString(), /INTERNAL/);
    } finally {
      failAfter = undefined;
    }
    // Known too large, the next reader streams it.
    const again = await get("GET", `${NAME}-2`);
    assert.equal(again.status, 200);
    assert.ok(expected(many, `${NAME}-2`).equals(again.body));
  });
});
