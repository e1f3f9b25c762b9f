/**
 * The Warmer on real shared stores (memcached and Redis started by the harness), with a
 * scripted client: replicas split the work through leases, an outage mid-warm is logged
 * and survived, undecodable values are refetched, refused values become the last error.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import memjs from "memjs";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import { bucketOf } from "../../src/cache/index-records.js";
import { Keys } from "../../src/cache/keys.js";
import { openStore } from "../../src/cache/open-store.js";
import type { Store } from "../../src/cache/store.js";
import { Warmer } from "../../src/cache/warmer.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { type MemcachedServer, startMemcached } from "../support/memcached.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";
import { FakeFactory, type FakeRepository, fakeRepository } from "./support/fake-registry.js";

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on("unhandledRejection", onUnhandled);

let memcached: MemcachedServer;
let redis: RedisServer;

before(async () => {
  [memcached, redis] = await Promise.all([startMemcached(), startRedis()]);
});
after(async () => {
  process.off("unhandledRejection", onUnhandled);
  await Promise.all([memcached?.stop(), redis?.stop()]);
});

interface Kind {
  name: string;
  url: () => string;
  server: () => MemcachedServer | RedisServer;
  writeRaw: (key: string, bytes: Buffer) => Promise<void>;
}

const kinds: Kind[] = [
  {
    name: "memcached",
    url: () => `memcached://${memcached.address}`,
    server: () => memcached,
    writeRaw: async (key, bytes) => {
      const client = memjs.Client.create(memcached.address);
      try {
        await client.set(key, bytes, { expires: 3600 });
      } finally {
        client.close();
      }
    },
  },
  {
    name: "redis",
    url: () => redis.url,
    server: () => redis,
    writeRaw: async (key, bytes) => {
      const client = new Redis(redis.port, "127.0.0.1", { maxRetriesPerRequest: 1 });
      client.on("error", () => {});
      try {
        await client.set(key, bytes, "PX", 3_600_000);
      } finally {
        client.disconnect();
      }
    },
  },
];

function capturingLogger() {
  const lines: string[] = [];
  return { lines, logger: pino({ level: "warn" }, { write: (s: string) => void lines.push(s) }) };
}

let run = 0;
const uniqueKeys = () => new Keys(`test${++run}:${Date.now()}:`);

// memcached's tests and Redis's run side by side: each kind's run one after another on its
// own server (its outage stops only that one), with keys of their own.
describe("Warmer on shared stores", { concurrency: true }, () => {
  for (const kind of kinds) {
    describe(`Warmer on ${kind.name}`, { concurrency: 1 }, () => {
      it("two warmers on one store each scan a disjoint set, and together all", async () => {
        const keys = uniqueKeys();
        const names = Array.from({ length: 8 }, (_, i) =>
          parseImageName(`registry.test/split/r${i}`),
        );
        const repos = new Map<string, FakeRepository>(
          names.map((n) => [n.toString(), { ...fakeRepository(n, 4, 2), delayMs: 5 }]),
        );
        const lookup = () => new Map(names.map((n) => [n.toString(), Credentials.none()]));
        const stores: Store[] = [];
        const scanned = new Map<string, string[]>();
        const stop = new AbortController();
        const runs: Promise<void>[] = [];
        for (const owner of ["alpha", "beta"]) {
          const store = await openStore(kind.url(), { timeoutMs: 2000 });
          stores.push(store);
          const warmer = new Warmer({
            store,
            keys,
            factory: new FakeFactory(repos),
            lookup,
            owner,
            concurrency: 1,
            intervalMs: 60_000,
            metricsRegistry: new MetricsRegistry(),
          });
          warmer.onScan((r) => {
            if (r.outcome === "scanned")
              scanned.set(r.repository, [...(scanned.get(r.repository) ?? []), owner]);
          });
          runs.push(warmer.start(stop.signal));
        }
        await waitFor(() => scanned.size >= names.length, {
          what: "every repository to be scanned",
          timeoutMs: 20_000,
          intervalMs: 20,
        });
        // A window for a duplicate scan to show.
        await new Promise((r) => setTimeout(r, 300));
        stop.abort();
        await Promise.all(runs);
        await Promise.all(stores.map((s) => s.close()));
        assert.equal(scanned.size, names.length, "together they scanned every repository");
        for (const [repo, owners] of scanned)
          assert.equal(owners.length, 1, `${repo}: ${owners.join(",")}`);
        const byAlpha = [...scanned.values()].filter((o) => o[0] === "alpha").length;
        assert.ok(byAlpha > 0 && byAlpha < names.length, `both scanned some (alpha: ${byAlpha})`);
      });

      it("survives the store going away mid-warm and refills it once it is back", async () => {
        const keys = uniqueKeys();
        const app = parseImageName("registry.test/outage/app");
        const lib = parseImageName("registry.test/outage/lib");
        const appRepo: FakeRepository = { ...fakeRepository(app, 60, 60), delayMs: 15 };
        const repos = new Map<string, FakeRepository>([
          [app.toString(), appRepo],
          [lib.toString(), fakeRepository(lib, 5, 1)],
        ]);
        const factory = new FakeFactory(repos);
        const { lines, logger } = capturingLogger();
        const store = await openStore(kind.url(), { timeoutMs: 500, logger });
        let restarted = false;
        const warmer = new Warmer({
          store,
          keys,
          factory,
          logger,
          burst: 2,
          concurrency: 1,
          metricsRegistry: new MetricsRegistry(),
        });
        try {
          const scanning = warmer.scan([{ name: app }, { name: lib }]);
          // The rest of the scan waits until the store is down: on a loaded machine the stop
          // (a process's exit) outlasted the 60 tags' fetches, and the scan ended "scanned".
          await waitFor(() => factory.counts(app.toString()).manifest >= 8, {
            what: "the scan to be under way",
            timeoutMs: 10_000,
            intervalMs: 5,
          });
          let stopped = () => {};
          appRepo.gate = new Promise<void>((resolve) => {
            stopped = resolve;
          });
          await kind.server().stop();
          stopped();
          appRepo.gate = undefined;
          const [a, l] = await scanning;
          assert.equal(a?.outcome, "failed");
          assert.equal(a?.error?.code, "STORE_ERROR");
          assert.ok(a && a.refreshed < 60, "stopped refreshing once writes failed");
          assert.notEqual(l?.outcome, "scanned", "the store was still down for the second one");
          assert.ok(
            lines.some((s) => /the store refused a write|could not/.test(s)),
            lines.join("\n"),
          );

          await kind.server().start();
          restarted = true;
          const deadline = Date.now() + 15_000;
          let again = await warmer.scan([{ name: app }, { name: lib }]);
          while (again.some((r) => r.outcome !== "scanned") && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 250));
            again = await warmer.scan([{ name: app }, { name: lib }]);
          }
          assert.deepEqual(
            again.map((r) => r.outcome),
            ["scanned", "scanned"],
          );
          const cache = new Cache({ store, keys, metricsRegistry: new MetricsRegistry() });
          assert.equal((await cache.getImageRepositoryMetadata(app)).images.size, 60);
          assert.equal((await cache.getImageRepositoryMetadata(lib)).images.size, 5);
          assert.deepEqual(unhandled, [], "no unhandled rejection");
        } finally {
          if (!restarted) await kind.server().start();
          await store.close();
        }
      });

      it("refetches values that do not decode, and records a refused value as the last error", async () => {
        const keys = uniqueKeys();
        const app = parseImageName("registry.test/values/app");
        const factory = new FakeFactory(new Map([[app.toString(), fakeRepository(app, 6, 6)]]));
        const store = await openStore(kind.url(), { timeoutMs: 2000 });
        const metricsRegistry = new MetricsRegistry();
        try {
          const warmer = new Warmer({ store, keys, factory, metricsRegistry });
          await warmer.scan([{ name: app }]);
          // v1's and v2's index buckets hold no other tag (the tags' buckets are all apart).
          assert.equal(new Set(["v0", "v1", "v2", "v3", "v4", "v5"].map(bucketOf)).size, 6);
          await kind.writeRaw(keys.bucket(app, bucketOf("v1")), Buffer.from("not an envelope"));
          // A valid envelope around a value that is not an index bucket.
          await store.set(
            keys.bucket(app, bucketOf("v2")),
            new Date(Date.now() + 3_600_000),
            new TextEncoder().encode("[1,2]"),
          );
          factory.reset();
          const [r] = await warmer.scan([{ name: app }]);
          assert.equal(r?.refreshed, 2);
          assert.equal(r?.fresh, 4);
          assert.equal(factory.counts(app.toString()).head, 2);
          const cache = new Cache({ store, keys, metricsRegistry });
          assert.equal((await cache.getImageRepositoryMetadata(app)).images.size, 6);
        } finally {
          await store.close();
        }

        // A store that refuses values over 2,000 bytes; these images' labels are bigger.
        const { lines, logger } = capturingLogger();
        const small = await openStore(kind.url(), { timeoutMs: 2000, maxValueBytes: 2000, logger });
        try {
          const other = parseImageName("registry.test/values/big");
          const big = fakeRepository(other, 3, 1);
          for (const image of big.images.values()) {
            if (image !== "excluded" && image.info)
              image.info.labels.description = "x".repeat(3000);
          }
          const warmer = new Warmer({
            store: small,
            keys,
            factory: new FakeFactory(new Map([[other.toString(), big]])),
            logger,
            metricsRegistry: new MetricsRegistry(),
          });
          const [r] = await warmer.scan([{ name: other }]);
          assert.equal(r?.outcome, "failed");
          assert.equal(r?.error?.code, "STORE_ERROR");
          assert.match(r?.error?.message ?? "", /large|exceeds|bytes/i);
          assert.ok(
            lines.some((s) => s.includes("the store refused a write")),
            lines.join("\n"),
          );
          const record = await new Cache({
            store: small,
            keys,
            metricsRegistry: new MetricsRegistry(),
          }).repositoryRecord(other);
          assert.equal(record?.lastError?.code, "STORE_ERROR");
        } finally {
          await small.close();
        }
      });
    });
  }
});
