/**
 * `regscan get` run as a user would, on a sqlite cache filled by `regscan scan` from the
 * real registry: a repository, one tag, a digest, an excluded image, a repository never
 * scanned and one whose scans always failed, a tag named `__proto__`; aligned text, the
 * image JSON form's key order (as `inspect` has it); a cache that does not exist is
 * reported, not created; the registry is never contacted. The CLI's `main` runs in this
 * process; the default cache location's run is the real process (the command's smoke test,
 * and the location comes from the process's own environment).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runCliInProcess } from "../support/cli.js";
import { ImageBuilder, type PushedImage } from "../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";

let registry: RegistryHandle;
let dir: string;
let cacheUrl: string;
let image: PushedImage;
let proto: PushedImage;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "regscan-cli-get-"));
  cacheUrl = `sqlite:${join(dir, "cache.db")}`;
  registry = await startRegistry();
  const builder = new ImageBuilder(registry);
  try {
    image = await builder.pushImage("get/app", ["1.0", "latest"], {
      seed: "get-app",
      created: "2024-02-03T04:05:06Z",
      labels: { team: "blue" },
    });
    // A valid tag and a label named like Object.prototype's accessor.
    proto = await builder.pushImage("get/proto", ["__proto__", "constructor", "v1"], {
      seed: "proto",
      // fromEntries: in an object literal, `__proto__: ...` would set the prototype instead.
      labels: Object.fromEntries([
        ["__proto__", "label"],
        ["plain", "yes"],
      ]),
    });
    await builder.pushIndex("get/arm", ["v1"], {
      seed: "arm",
      platforms: [{ os: "linux", architecture: "arm64" }],
    });
  } finally {
    await builder.close();
  }
  const scan = await runCliInProcess(
    [
      "scan",
      `${registry.host}/get/app`,
      `${registry.host}/get/arm`,
      `${registry.host}/get/missing`,
      `${registry.host}/get/proto`,
      "--cache",
      cacheUrl,
      "--insecure-host",
      registry.host,
    ],
    { env: { DOCKER_CONFIG: join(dir, "none") } },
  );
  assert.equal(scan.code, 1, `the missing repository fails the scan: ${scan.stdout}${scan.stderr}`);
  // ... and only that one: the others are in the cache.
  for (const repo of ["app", "arm", "proto"]) {
    assert.match(
      scan.stdout,
      new RegExp(`/get/${repo} .* scanned$`, "m"),
      scan.stdout + scan.stderr,
    );
  }
  registry.resetRequests();
});

after(async () => {
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const get = (...args: string[]) => runCliInProcess(["get", ...args, "--cache", cacheUrl]);

describe("regscan get", () => {
  it("shows a repository's cached tags as text and JSON", async () => {
    const text = await get(`${registry.host}/get/app`);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^Tags: +2 \(2 cached\)$/m);
    assertAligned(text.stdout);
    assert.match(
      text.stdout,
      new RegExp(`^1\\.0\\s+${image.digest}\\s+2024-02-03T04:05:06\\.000Z`, "m"),
    );

    const json = await get(`${registry.host}/get/app`, "--output", "json");
    assert.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout) as {
      name: string;
      tags: string[];
      images: Record<string, { digest: string; labels: Record<string, string>; ref: string }>;
      missing: string[];
      lastScanned: string;
    };
    assert.equal(body.name, `${registry.host}/get/app`);
    assert.deepEqual([...body.tags].sort(), ["1.0", "latest"]);
    assert.equal(body.images["1.0"]?.digest, image.digest);
    assert.equal(body.images.latest?.labels.team, "blue");
    assert.equal(body.images.latest?.ref, `${registry.host}/get/app:latest`);
    assert.deepEqual(body.missing, []);
    assert.ok(body.lastScanned);
  });

  it("shows one tag, a digest, and an excluded image", async () => {
    const tag = await get(`${registry.host}/get/app:1.0`, "-o", "json");
    assert.equal(tag.code, 0, tag.stderr);
    const info = JSON.parse(tag.stdout) as {
      digest: string;
      createdAt: string;
      cache: { refreshIntervalSeconds: number };
    };
    assert.equal(info.digest, image.digest);
    assert.equal(info.createdAt, "2024-02-03T04:05:06.000Z");
    assert.equal(info.cache.refreshIntervalSeconds, 3600);

    const byDigest = await get(`${registry.host}/get/app@${image.digest}`, "-o", "json");
    assert.equal(byDigest.code, 0, byDigest.stderr);
    assert.equal((JSON.parse(byDigest.stdout) as { digest: string }).digest, image.digest);

    const text = await get(`${registry.host}/get/app:latest`);
    assert.match(text.stdout, /^Digest: +sha256:/m);
    assert.match(text.stdout, /^Labels:\n {2}team=blue$/m);
    assert.match(text.stdout, /^Next check: +\d{4}-/m);
    assertAligned(text.stdout);

    const arm = await get(`${registry.host}/get/arm:v1`, "-o", "json");
    assert.equal(arm.code, 0, arm.stderr);
    assert.match(
      (JSON.parse(arm.stdout) as { excludedReason: string }).excludedReason,
      /linux\/amd64/,
    );
  });

  it("explains what is missing, exit status 1", async () => {
    const never = await get(`${registry.host}/get/never-scanned`);
    assert.equal(never.code, 1);
    assert.match(never.stderr, /is not in the cache yet.*regscan scan/);
    const tag = await get(`${registry.host}/get/app:2.0`);
    assert.equal(tag.code, 1);
    assert.match(tag.stderr, /get\/app:2\.0: no such tag in the cached listing/);
    const failed = await get(`${registry.host}/get/missing`);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /never succeeded.*NAME_UNKNOWN|never succeeded.*unknown/);
    const bad = await get("bad//name");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid image reference/);
  });

  it("keeps a tag and a label named __proto__", async () => {
    const json = await get(`${registry.host}/get/proto`, "-o", "json");
    assert.equal(json.code, 0, json.stderr);
    // JSON.parse defines "__proto__" as an own key, as it appears in the text.
    const body = JSON.parse(json.stdout) as { tags: string[]; images: object };
    assert.deepEqual([...body.tags].sort(), ["__proto__", "constructor", "v1"]);
    assert.deepEqual(Object.keys(body.images).sort(), ["__proto__", "constructor", "v1"]);
    const images = new Map(Object.entries(body.images)) as Map<
      string,
      { digest: string; labels: object }
    >;
    assert.equal(images.get("__proto__")?.digest, proto.digest);
    assert.deepEqual(Object.entries(images.get("__proto__")?.labels ?? {}).sort(), [
      ["__proto__", "label"],
      ["plain", "yes"],
    ]);
    const one = await get(`${registry.host}/get/proto:__proto__`, "-o", "json");
    assert.equal(one.code, 0, one.stderr);
    assert.equal((JSON.parse(one.stdout) as { digest: string }).digest, proto.digest);
    const text = await get(`${registry.host}/get/proto:__proto__`);
    assert.match(text.stdout, /^ {2}__proto__=label$/m);
  });

  it("prints an image's JSON in the image JSON form's key order, then the cache's bookkeeping", async () => {
    const one = await get(`${registry.host}/get/app:1.0`, "-o", "json");
    const keys = Object.keys(JSON.parse(one.stdout) as object);
    assert.deepEqual(keys, [
      "ref",
      "digest",
      "imageID",
      "mediaType",
      "createdAt",
      "labels",
      "annotations",
      "platform",
      "platforms",
      "lastFetched",
      "cache",
    ]);
  });

  it("refuses an empty --cache, and reports a cache that does not exist without creating it", async () => {
    const empty = await runCliInProcess(["get", `${registry.host}/get/app`, "--cache", ""]);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /^regscan: invalid cache store URL "": the URL is empty/);

    const absent = join(dir, "absent.db");
    const missing = await runCliInProcess([
      "get",
      `${registry.host}/get/app:1.0`,
      "--cache",
      `sqlite:${absent}`,
    ]);
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      `regscan: no cache yet: sqlite:${absent} does not exist; fill it with "regscan scan ${registry.host}/get/app --cache sqlite:${absent}"\n`,
    );
    assert.equal(existsSync(absent), false, "get created the database");

    // The default location too: an empty cache directory stays empty. The real process,
    // as the location is read from the process's environment.
    const home = join(dir, "xdg");
    const byDefault = await runCli(["get", `${registry.host}/get/app`], {
      env: { XDG_CACHE_HOME: home },
    });
    assert.equal(byDefault.code, 1);
    assert.match(byDefault.stderr, /no cache yet: sqlite:.*xdg\/regscan\/cache\.db does not exist/);
    assert.equal(existsSync(home), false);
  });

  it("never contacts the registry", () => {
    assert.deepEqual(registry.requests(), []);
  });
});

describe("regscan get and inspect agree", () => {
  it("on the image JSON form's keys and their order", async () => {
    const cached = JSON.parse((await get(`${registry.host}/get/app:1.0`, "-o", "json")).stdout);
    const asked = await runCliInProcess(
      ["inspect", `${registry.host}/get/app:1.0`, "-o", "json", "--insecure-host", registry.host],
      { env: { DOCKER_CONFIG: join(dir, "none") } },
    );
    assert.equal(asked.code, 0, asked.stderr);
    const fresh = JSON.parse(asked.stdout) as Record<string, unknown>;
    // The cache's bookkeeping comes last in `get`; everything before it is the image's.
    assert.deepEqual(
      Object.keys(fresh),
      Object.keys(cached).filter((k) => k !== "cache"),
    );
    // The same values, but for when each was fetched.
    const { lastFetched: _a, cache: _b, ...cachedImage } = cached;
    const { lastFetched: _c, ...freshImage } = fresh;
    assert.deepEqual(freshImage, cachedImage);
  });
});

/**
 * Every `Name: value` line's value starts in the same column, and every table row's cells
 * start where the header's do.
 */
function assertAligned(text: string): void {
  const lines = text.split("\n");
  const starts = new Set(
    lines
      .map((l) => /^([A-Z][A-Za-z ]*:) +\S/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => m[0].length - 1),
  );
  assert.equal(starts.size, 1, `values start in columns ${[...starts].join(", ")}:\n${text}`);
  const header = lines.findIndex((l) => l.startsWith("TAG "));
  if (header < 0) return;
  const columns = [...(lines[header] ?? "").matchAll(/\S+(?: \S+)*/g)].map((m) => m.index);
  for (const row of lines.slice(header + 1).filter((l) => l !== "")) {
    for (const at of columns.slice(1, -1)) {
      assert.equal(row[at - 1], " ", `row ${JSON.stringify(row)} overruns column ${at}`);
      assert.notEqual(row[at], " ", `row ${JSON.stringify(row)} has nothing at column ${at}`);
    }
  }
}
