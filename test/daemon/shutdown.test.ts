/**
 * SIGTERM during a scan (issue 5, acceptance 4): `regscan serve` exits 0 within its shutdown
 * bound, and the store, reopened afterwards, holds everything that had been written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Cache } from "../../src/cache/cache.js";
import { openStore } from "../../src/cache/open-store.js";
import { parseImageName } from "../../src/image/ref.js";
import { ImageBuilder } from "../support/image-builder.js";
import { cleanupAll, makeTempDir, waitFor } from "../support/processes.js";
import { startRegistry } from "../support/registry.js";
import { startServe } from "./serve-process.js";

after(cleanupAll);

describe("graceful shutdown", () => {
  test("SIGTERM during a scan: exit 0 within the bound, store intact on reopen", async () => {
    const dir = makeTempDir("regscan-shutdown-");
    const registry = await startRegistry();
    const builder = new ImageBuilder(registry);
    const fastTags = ["a1", "a2", "a3", "a4", "a5"];
    const slowTags = Array.from({ length: 20 }, (_, i) => `b${i}`);
    await builder.pushImage("team/fast", fastTags);
    await builder.pushImage("team/slow", slowTags.slice(0, 10));
    await builder.pushImage("team/slow", slowTags.slice(10));
    await builder.close();
    let slowManifestRequests = 0;
    registry.setFault((req) => {
      if (req.path.startsWith("/v2/team/slow/manifests/")) {
        slowManifestRequests++;
        return { delayMs: 4_000 };
      }
      return undefined;
    });

    const db = join(dir, "cache.db");
    const fast = `${registry.host}/team/fast`;
    const slow = `${registry.host}/team/slow`;
    const boundMs = 5_000;
    const serve = await startServe([
      "--image",
      fast,
      "--image",
      slow,
      "--insecure-host",
      registry.host,
      "--cache",
      `sqlite:${db}`,
      "--burst",
      "2",
      "--shutdown-timeout",
      `${boundMs}ms`,
    ]);
    await waitFor(async () => (await serve.fetchJson(`/v1/repositories/${fast}`)).status === 200, {
      what: "the fast repository to be cached",
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    await waitFor(async () => slowManifestRequests > 0, {
      what: "the slow scan to be under way",
      timeoutMs: 15_000,
    });
    const during = await serve.fetchJson("/v1/repositories");
    const slowStatus = (
      during.body.repositories as Array<{ name: string; scanning?: boolean }>
    ).find((s) => s.name === slow);
    assert.equal(
      slowStatus?.scanning,
      true,
      "the slow repository is being scanned when SIGTERM comes",
    );

    const stopped = await serve.stop("SIGTERM");
    assert.equal(stopped.code, 0, serve.output());
    assert.ok(stopped.ms < boundMs + 1_500, `stopped in ${stopped.ms} ms (bound ${boundMs} ms)`);
    assert.match(serve.output(), /shutting down/);
    registry.setFault(undefined);

    const raw = new Database(db, { readonly: true });
    try {
      assert.equal(raw.pragma("integrity_check", { simple: true }), "ok");
    } finally {
      raw.close();
    }
    const store = await openStore(`sqlite:${db}`);
    try {
      const cache = new Cache({ store });
      const meta = await cache.getImageRepositoryMetadata(parseImageName(fast));
      assert.deepEqual([...meta.tags].sort(), fastTags);
      assert.deepEqual(
        [...meta.images.keys()].sort(),
        fastTags,
        "every fetched image of the finished scan is there",
      );
      const record = await cache.repositoryRecord(parseImageName(slow));
      assert.ok(record, "the interrupted repository was written back");
    } finally {
      await store.close();
    }
    await registry.stop();
  });
});
