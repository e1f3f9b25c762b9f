/**
 * `regscan get` run as a user would, on a sqlite cache filled by `regscan scan` from the
 * real registry: a repository, one tag, a digest, an excluded image, a repository never
 * scanned and one whose scans always failed; the registry is never contacted.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../support/cli.js";
import { ImageBuilder, type PushedImage } from "../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";

let registry: RegistryHandle;
let dir: string;
let cacheUrl: string;
let image: PushedImage;

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
    await builder.pushIndex("get/arm", ["v1"], {
      seed: "arm",
      platforms: [{ os: "linux", architecture: "arm64" }],
    });
  } finally {
    await builder.close();
  }
  const scan = await runCli(
    [
      "scan",
      `${registry.host}/get/app`,
      `${registry.host}/get/arm`,
      `${registry.host}/get/missing`,
      "--cache",
      cacheUrl,
      "--insecure-host",
      registry.host,
    ],
    { env: { DOCKER_CONFIG: join(dir, "none") } },
  );
  assert.equal(scan.code, 1, `the missing repository fails the scan: ${scan.stdout}${scan.stderr}`);
  registry.resetRequests();
});

after(async () => {
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const get = (...args: string[]) => runCli(["get", ...args, "--cache", cacheUrl]);

describe("regscan get", () => {
  it("shows a repository's cached tags as text and JSON", async () => {
    const text = await get(`${registry.host}/get/app`);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /tags: 2 \(2 cached\)/);
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
    assert.match(text.stdout, /digest: +sha256:/);
    assert.match(text.stdout, /label team=blue/);

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

  it("never contacts the registry", () => {
    assert.deepEqual(registry.requests(), []);
  });
});
