/**
 * Replicas learn a host's tag sharing once, not each (issue 13, acceptance 4): two Warmers
 * on one real Redis (two clients: two replicas) against the real registry, requests counted
 * by its recording proxy. What the first learnt of the host by scanning one repository of
 * distinct images, the second uses for its first scan of another repository there: no HEAD
 * first. A third replica on another key prefix (shares nothing) pays the learning.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Keys } from "../../src/cache/keys.js";
import { SHARING_SAMPLE } from "../../src/cache/new-tag-fetch.js";
import { openStore } from "../../src/cache/open-store.js";
import type { Store } from "../../src/cache/store.js";
import { Warmer } from "../../src/cache/warmer.js";
import { parseImageName } from "../../src/image/ref.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";

const LEARNT = SHARING_SAMPLE + 8;
const SMALL = 10;

describe("Warmer replicas on one store: a host's sharing is learnt once", () => {
  let registry: RegistryHandle;
  let builder: ImageBuilder;
  let redis: RedisServer;
  const stores: Store[] = [];
  const factories: RemoteClientFactory[] = [];

  before(async () => {
    [registry, redis] = await Promise.all([startRegistry(), startRedis()]);
    builder = new ImageBuilder(registry);
    for (let i = 0; i < LEARNT; i++) {
      await builder.pushImage("learnt/big", `t${i}`, { seed: `big-${i}` });
    }
    for (let i = 0; i < SMALL; i++) {
      await builder.pushImage("learnt/small", `t${i}`, { seed: `small-${i}` });
    }
  });

  after(async () => {
    await Promise.all(factories.map((f) => f.close()));
    await Promise.all(stores.map((s) => s.close()));
    await builder?.close();
    await registry?.stop();
    await redis?.stop();
  });

  async function replica(prefix: string) {
    const store = await openStore(redis.url);
    stores.push(store);
    const factory = new RemoteClientFactory({
      insecureHosts: [registry.host],
      limiters: { rps: 100_000, burst: 1000 },
    });
    factories.push(factory);
    return new Warmer({ store, factory, burst: 4, keys: new Keys(prefix) });
  }

  /** Manifest HEADs of `repository` since the last reset. */
  const heads = (repository: string) =>
    registry
      .requests()
      .filter((r) => r.method === "HEAD" && r.path.startsWith(`/v2/${repository}/manifests/`))
      .length;

  it("the second replica's first scan on the host fetches new tags with one GET each", async () => {
    const prefix = `shared-${process.pid}:v2:`;
    const first = await replica(prefix);
    const [big] = await first.scan([{ name: parseImageName(`${registry.host}/learnt/big`) }]);
    assert.equal(big?.outcome, "scanned");
    assert.ok((big?.fetchedByTag ?? 0) > 0, "the first replica learnt GET first pays");

    const second = await replica(prefix);
    registry.resetRequests();
    const [small] = await second.scan([{ name: parseImageName(`${registry.host}/learnt/small`) }]);
    assert.equal(small?.outcome, "scanned");
    assert.equal(small?.refreshed, SMALL);
    assert.equal(heads("learnt/small"), 0, "no HEAD first: the host's sharing came from the store");
    assert.equal(small?.fetchedByTag, SMALL);

    // Control: a replica that shares nothing (its own prefix) pays the learning.
    const alone = await replica(`alone-${process.pid}:v2:`);
    registry.resetRequests();
    const [control] = await alone.scan([{ name: parseImageName(`${registry.host}/learnt/small`) }]);
    assert.equal(control?.outcome, "scanned");
    assert.equal(heads("learnt/small"), SMALL, "alone, every new tag goes HEAD first");
  });
});
