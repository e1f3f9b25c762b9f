/**
 * What one repository scan sends to Redis (issue 13: one replica keeping 10,000 repositories
 * fresh is bound by the scans' per-command cost), held per scan kind so that a command more
 * fails: Redis's MONITOR sees every command the store's connection sends (commands a script
 * runs inside Redis are told apart and not counted), by command and key kind.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { Registry as MetricsRegistry } from "prom-client";
import { Keys } from "../../src/cache/keys.js";
import { openStore } from "../../src/cache/open-store.js";
import type { Store } from "../../src/cache/store.js";
import { Warmer } from "../../src/cache/warmer.js";
import { parseImageName } from "../../src/image/ref.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";
import { FakeClock, FakeFactory, fakeDigest, fakeRepository } from "./support/fake-registry.js";

const HOUR = 3_600_000;
const TAGS = 10;

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

/** The kind of key a command names (the part after the test's prefix), or the command alone. */
function kindOf(prefix: string, args: string[]): string {
  const key = args[0]?.startsWith(prefix)
    ? args[0]
    : args.find((a) => typeof a === "string" && a.startsWith(prefix));
  if (!key) return "other";
  const rest = key.slice(prefix.length);
  return /^[a-z-]+/.exec(rest)?.[0] ?? "other";
}

/** Commands the clients sent (not those scripts ran) naming the prefix, as "command kind" counts. */
class CommandLog {
  readonly counts = new Map<string, number>();
  #monitor: Awaited<ReturnType<Redis["monitor"]>> | undefined;

  constructor(readonly prefixes: { legacy: string; current: string }) {}

  async start(client: Redis): Promise<void> {
    this.#monitor = await client.monitor();
    this.#monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (source === "lua") return;
      // A script is sent as EVAL or EVALSHA (once loaded): one command either way.
      const command = (args[0] ?? "").toLowerCase().replace(/^evalsha$/, "eval");
      if (command === "ping" && args[1] === this.marker) {
        this.#markSeen = true;
        return;
      }
      const named = args.slice(1);
      // EVAL / EVALSHA: script, number of keys, keys...
      const keys = command.startsWith("eval") ? named.slice(2) : named;
      const { legacy, current } = this.prefixes;
      let kind: string;
      if (keys.some((k) => k.startsWith(current))) kind = kindOf(current, keys);
      else if (legacy !== current && keys.some((k) => k.startsWith(legacy))) {
        kind = `legacy-${kindOf(legacy, keys)}`;
      } else return;
      const key = `${command} ${kind}`;
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    });
  }

  readonly marker = `mark-${process.pid}`;
  #markSeen = false;

  /** Waits until MONITOR has shown everything sent before now (a PING sent after it). */
  async settle(client: Redis): Promise<void> {
    this.#markSeen = false;
    await client.ping(this.marker);
    await waitFor(() => this.#markSeen, { what: "MONITOR to catch up", timeoutMs: 5000 });
  }

  take(): Record<string, number> {
    const out = Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
    this.counts.clear();
    return out;
  }

  stop(): void {
    this.#monitor?.disconnect();
  }
}

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

describe("Redis commands per repository scan", () => {
  it("holds the commands of a cold scan, a steady rescan, a moved tag and a scan with nothing due", async () => {
    const current = `scan-cmds:${process.pid}:${Date.now()}:v2:`;
    const keys = new Keys(current);
    const log = new CommandLog({ current, legacy: keys.legacyPrefix });
    const monitorClient = new Redis(redis.port, "127.0.0.1", { maxRetriesPerRequest: 1 });
    const pinger = new Redis(redis.port, "127.0.0.1", { maxRetriesPerRequest: 1 });
    let store: Store | undefined;
    try {
      await log.start(monitorClient);
      store = await openStore(redis.url, { timeoutMs: 5000 });
      const clock = new FakeClock(Date.now());
      const name = parseImageName("registry.test/team/app");
      const repo = fakeRepository(name, TAGS, TAGS);
      const factory = new FakeFactory(new Map([[name.toString(), repo]]));
      const warmer = new Warmer({
        store,
        keys,
        factory,
        owner: "counting",
        now: clock.now,
        metricsRegistry: new MetricsRegistry(),
      });
      const scan = async () => {
        const [result] = await warmer.scan([{ name }]);
        assert.equal(result?.outcome, "scanned", JSON.stringify(result?.error));
        await log.settle(pinger);
        const all = log.take();
        // The host's sharing record is the host's, not the repository's (read when the
        // replica meets the host, then read and written as scans count new tags): apart.
        let sharing = 0;
        for (const [k, n] of Object.entries(all)) if (k.endsWith(" host-sharing")) sharing += n;
        const own = Object.fromEntries(
          Object.entries(all).filter(([k]) => !k.endsWith(" host-sharing")),
        );
        return { result: result as NonNullable<typeof result>, own, sharing };
      };

      // Cold: every tag new, each on its own image.
      const cold = await scan();
      assert.equal(cold.result.refreshed, TAGS);
      assert.deepEqual(cold.own, {
        // The lease taken with who holds it (one script).
        "eval lease": 1,
        // The record, absent: the first layout's is looked for.
        "get repo": 1,
        "get legacy-repo": 1,
        "mget idx": 1,
        // Each image as it is fetched, before any bucket names it.
        "set img": TAGS,
        // Every changed bucket in one script call.
        "eval idx": 1,
        // The record written last, and the lease given back with it (one script).
        "eval repo": 1,
      });
      assert.equal(sum(cold.own), 16);
      // Met once (a read), then recorded at the 8th tag and at the end (a read and a write each).
      assert.ok(cold.sharing <= 5, `host sharing: ${cold.sharing}`);

      // Steady: every tag past its deadline, none moved (HEAD each, no GET).
      clock.advance(HOUR + 60_000);
      const steady = await scan();
      assert.equal(steady.result.unchanged, TAGS);
      assert.equal(steady.sharing, 0, "no new tag: nothing to record for the host");
      assert.deepEqual(steady.own, {
        "eval lease": 1,
        "get repo": 1,
        "mget idx": 1,
        // The due tags' images, checked in one read (an evicted one is fetched again).
        "mget img": 1,
        "eval idx": 1,
        "eval repo": 1,
      });

      // One tag moved to a new image: that image's record is the one command more.
      clock.advance(2 * HOUR + 60_000);
      const moved = fakeDigest(TAGS + 1);
      const image = repo.images.get(fakeDigest(1));
      assert.ok(image && image !== "excluded" && image.info);
      repo.images.set(moved, { info: { ...image.info, digest: moved } });
      repo.tags.set("v0", moved);
      const oneMoved = await scan();
      assert.deepEqual(oneMoved.result.movedTags, ["v0"]);
      assert.deepEqual(oneMoved.own, { ...steady.own, "set img": 1 });

      // Nothing due (a forced rescan at once): lease, record and index only.
      const idle = await scan();
      assert.equal(idle.result.fresh, TAGS);
      assert.deepEqual(idle.own, {
        "eval lease": 1,
        "get repo": 1,
        "mget idx": 1,
        "eval repo": 1,
      });
    } finally {
      log.stop();
      monitorClient.disconnect();
      pinger.disconnect();
      await store?.close();
    }
  });

  it("the lease and its holder, taken in one command, are read by another replica and taken over from a dead one", async () => {
    const keys = new Keys(`scan-lease:${process.pid}:${Date.now()}:v2:`);
    const name = parseImageName("registry.test/team/held");
    const repo = fakeRepository(name, 3, 3);
    const stores = [await openStore(redis.url), await openStore(redis.url)];
    try {
      const [mine, other] = stores as [Store, Store];
      // A scan that waits inside the registry holds the lease: the other replica is told who.
      const slow = { ...repo, delayMs: 300 };
      const warmerOf = (store: Store, owner: string, r = repo) =>
        new Warmer({
          store,
          keys,
          factory: new FakeFactory(new Map([[name.toString(), r]])),
          owner,
          metricsRegistry: new MetricsRegistry(),
        });
      const holding = warmerOf(mine, "holding", slow).scan([{ name }]);
      await waitFor(async () => (await other.get(keys.leaseHolder(name))) !== undefined, {
        what: "the holder record",
        timeoutMs: 5000,
      });
      const [skipped] = await warmerOf(other, "other").scan([{ name }]);
      assert.equal(skipped?.outcome, "skipped-lease");
      assert.deepEqual(
        [skipped?.leaseHolder?.host, skipped?.leaseHolder?.pid],
        [hostname(), process.pid],
      );
      assert.equal((await holding)[0]?.outcome, "scanned");

      // A lease left by a process of this host that has exited is taken over at once.
      const dead = spawnSync(process.execPath, ["-e", ""]).pid;
      assert.ok(await mine.acquire(keys.lease(name), 60_000, "killed"));
      const holder = { owner: "killed", host: hostname(), pid: dead, since: Date.now() };
      await mine.set(
        keys.leaseHolder(name),
        new Date(Date.now() + 60_000),
        new TextEncoder().encode(JSON.stringify(holder)),
      );
      const [taken] = await warmerOf(other, "other").scan([{ name }]);
      assert.equal(taken?.outcome, "scanned");
      assert.equal(await mine.acquire(keys.lease(name), 60_000, "after"), true, "released");
    } finally {
      for (const s of stores) await s.close();
    }
  });
});
