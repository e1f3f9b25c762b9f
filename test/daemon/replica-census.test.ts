/**
 * The replica census on real stores (Redis and memcached started on loopback, and the memory
 * store): replicas see each other, take equal shares of the registry budgets, a replica that
 * stops heartbeating is counted out after the TTL (and gave its share up first), one that
 * stops cleanly is counted out at once; and at no moment do the shares in use add up to more
 * than the whole budget.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { Registry } from "prom-client";
import { openStore } from "../../src/cache/open-store.js";
import type { Store } from "../../src/cache/store.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import {
  type CensusView,
  fairParts,
  MIN_NEED,
  needsOf,
  ReplicaCensus,
  StretchBoard,
} from "../../src/daemon/replica-census.js";
import type { HostWant } from "../../src/registry/http/rate-limiters.js";
import { type MemcachedServer, startMemcached } from "../support/memcached.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";

const logger = pino({ level: process.env.CENSUS_LOG ?? "silent" });

/** A store that fails every operation once `down` is set: a replica cut off (or killed). */
function cuttable(store: Store): { store: Store; cut: () => void } {
  let down = false;
  const guard = <T>(f: () => Promise<T>): Promise<T> =>
    down ? Promise.reject(new Error("cut off")) : f();
  return {
    cut: () => {
      down = true;
    },
    store: {
      get: (k, o) => guard(() => store.get(k, o)),
      getMany: (k, o) => guard(() => store.getMany(k, o)),
      set: (k, d, v, o) => guard(() => store.set(k, d, v, o)),
      acquire: (k, t, w, o) => guard(() => store.acquire(k, t, w, o)),
      release: (k, w, o) => guard(() => store.release(k, w, o)),
      ping: (o) => guard(() => store.ping(o)),
      close: () => Promise.resolve(),
    },
  };
}

/** `store`, with the name of every operation called on it, in order. */
function counted(store: Store): { store: Store; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

/** One census of a {@link Fleet}. */
interface FleetMember {
  store: Store;
  owner: string;
  heartbeatMs: number;
  /** Default: the census's (five heartbeats). */
  ttlMs?: number | undefined;
  /** What the replica asks of each host (default: nothing, every host shared equally). */
  wants?: (() => ReadonlyMap<string, HostWant>) | undefined;
  stretches?: StretchBoard | undefined;
}

/**
 * Census instances on one store that check, at every change of any of them, that the shares
 * in use add up to at most 1.
 */
class Fleet {
  readonly members: ReplicaCensus[] = [];
  readonly shares = new Map<ReplicaCensus, number>();
  readonly violations: string[] = [];
  /** Hosts the members ask of; the shares of each in use must add up to at most 1 too. */
  readonly hosts = new Set<string>();
  constructor(readonly prefix: string) {}

  add({ store, owner, heartbeatMs, ttlMs, wants, stretches }: FleetMember): ReplicaCensus {
    const census = new ReplicaCensus({
      store,
      owner,
      prefix: this.prefix,
      heartbeatMs,
      ttlMs,
      logger,
      wants,
      stretches,
    });
    this.shares.set(census, 0);
    const check = () => {
      for (const host of this.hosts) {
        const sum = this.members.reduce((a, m) => a + m.shareOf(host), 0);
        if (sum > 1 + 1e-9) this.violations.push(`${owner}: ${host} sum ${sum}`);
      }
    };
    census.onChange((view: CensusView) => {
      this.shares.set(census, view.share);
      const sum = [...this.shares.values()].reduce((a, b) => a + b, 0);
      if (sum > 1 + 1e-9) this.violations.push(`${owner} -> ${view.share}: sum ${sum}`);
      check();
    });
    census.onHostShares(check);
    this.members.push(census);
    return census;
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }
}

const views = (fleet: Fleet) => fleet.members.map((m) => m.view);
let prefixes = 0;
const nextPrefix = () => `census-test-${process.pid}-${prefixes++}:`;

describe("ReplicaCensus on Redis", () => {
  let redis: RedisServer;
  let store: Store;
  before(async () => {
    redis = await startRedis();
    store = await openStore(redis.url, {});
  });
  after(async () => {
    await store?.close();
    await redis?.stop();
  });

  it("two replicas see 2 and take half each; one cut off is counted out after the TTL", async () => {
    const fleet = new Fleet(nextPrefix());
    const a = cuttable(store);
    const censusA = fleet.add({ store: a.store, owner: "a", heartbeatMs: 100, ttlMs: 600 });
    const censusB = fleet.add({ store, owner: "b", heartbeatMs: 100, ttlMs: 600 });
    try {
      await censusA.start();
      assert.deepEqual(censusA.view, { replicas: 1, share: 1 }, "alone: the whole budget");
      await censusB.start();
      await waitFor(() => views(fleet).every((v) => v.replicas === 2 && v.share === 0.5), {
        what: "both replicas at 2 and half each",
        timeoutMs: 10_000,
      });
      const cutAt = Date.now();
      a.cut();
      await waitFor(() => censusB.view.replicas === 1 && censusB.view.share === 1, {
        what: "b alone with the whole budget",
        timeoutMs: 10_000,
      });
      const took = Date.now() - cutAt;
      // The TTL runs from a's last heartbeat that b saw move, which can come up to a
      // heartbeat (100 ms) before the cut, and b looks once per heartbeat: at least 400 ms.
      assert.ok(took >= 400, `b took a's share back after ${took} ms, within the 600 ms TTL`);
      assert.equal(censusA.view.share, 0, "a, cut off, gave its share up");
      assert.deepEqual(fleet.violations, []);
    } finally {
      await fleet.stop();
    }
  });

  it("a replica that stops cleanly is counted out at the others' next heartbeat", async () => {
    const fleet = new Fleet(nextPrefix());
    const censusA = fleet.add({ store, owner: "a", heartbeatMs: 100, ttlMs: 30_000 });
    const censusB = fleet.add({ store, owner: "b", heartbeatMs: 100, ttlMs: 30_000 });
    try {
      await Promise.all([censusA.start(), censusB.start()]);
      await waitFor(() => views(fleet).every((v) => v.replicas === 2 && v.share === 0.5), {
        what: "both at half",
        timeoutMs: 10_000,
      });
      const stoppedAt = Date.now();
      await censusA.stop();
      assert.equal(censusA.view.share, 0);
      await waitFor(() => censusB.view.replicas === 1 && censusB.view.share === 1, {
        what: "b alone",
        timeoutMs: 10_000,
      });
      assert.ok(Date.now() - stoppedAt < 30_000 / 2, "well before the TTL");
      assert.deepEqual(fleet.violations, []);
    } finally {
      await fleet.stop();
    }
  });

  it("a heartbeat is two round trips: the lease with the read, the write with the lease's return", async () => {
    // Each round trip of a heartbeat waits for the event loop; on a loaded replica four of
    // them left seconds between heartbeats (see the census's #lockAndRead).
    const fleet = new Fleet(nextPrefix());
    const a = counted(store);
    const censusA = fleet.add({ store: a.store, owner: "a", heartbeatMs: 60_000 });
    const censusB = fleet.add({ store, owner: "b", heartbeatMs: 60_000 });
    try {
      await censusA.start();
      await censusB.start();
      a.calls.length = 0;
      await censusA.beat();
      assert.deepEqual(a.calls, ["acquireAndGet", "setAndRelease"]);
      assert.deepEqual(censusA.view, { replicas: 2, share: 0.5 }, "a made room for b");
      // The lease went back with the write: b takes it at its first try, and what a made room.
      await censusB.beat();
      assert.deepEqual(views(fleet), [
        { replicas: 2, share: 0.5 },
        { replicas: 2, share: 0.5 },
      ]);
      assert.deepEqual(fleet.violations, []);
    } finally {
      await fleet.stop();
    }
  });

  it("publishes the live replica count as regscan_replicas_live", async () => {
    const metrics = new Registry();
    const census = new ReplicaCensus({
      store,
      owner: "solo",
      prefix: nextPrefix(),
      heartbeatMs: 100,
      logger,
      metrics,
    });
    try {
      await census.start();
      const text = await metrics.metrics();
      assert.match(text, /^regscan_replicas_live 1$/m);
    } finally {
      await census.stop();
    }
  });
});

describe("ReplicaCensus on memcached", () => {
  let memcached: MemcachedServer;
  let store: Store;
  before(async () => {
    memcached = await startMemcached();
    store = await openStore(`memcached://${memcached.address}`, {});
  });
  after(async () => {
    await store?.close();
    await memcached?.stop();
  });

  it("three replicas joining at once end at a third each, never above the whole", async () => {
    const fleet = new Fleet(nextPrefix());
    for (const owner of ["a", "b", "c"]) fleet.add({ store, owner, heartbeatMs: 150 });
    try {
      await Promise.all(fleet.members.map((m) => m.start()));
      await waitFor(
        () => views(fleet).every((v) => v.replicas === 3 && Math.abs(v.share - 1 / 3) < 1e-6),
        { what: "three replicas at a third each", timeoutMs: 10_000 },
      );
      assert.deepEqual(fleet.violations, []);
    } finally {
      await fleet.stop();
    }
  });
});

describe("ReplicaCensus on the memory store", () => {
  it("a joiner takes nothing until the others have made room", async () => {
    const store = new MemoryStore();
    const fleet = new Fleet(nextPrefix());
    const first = fleet.add({ store, owner: "first", heartbeatMs: 60_000 });
    const joiner = fleet.add({ store, owner: "joiner", heartbeatMs: 60_000 });
    try {
      await first.start();
      assert.equal(first.view.share, 1);
      await joiner.start();
      assert.deepEqual(joiner.view, { replicas: 2, share: 0 }, "the first still uses it all");
      await first.beat();
      assert.deepEqual(first.view, { replicas: 2, share: 0.5 });
      await joiner.beat();
      assert.deepEqual(joiner.view, { replicas: 2, share: 0.5 });
      assert.deepEqual(fleet.violations, []);
    } finally {
      await fleet.stop();
      await store.close();
    }
  });
});

describe("ReplicaCensus: the replicas' interval stretches", () => {
  /** Three replicas a, b and c on one store, each with its board, beating by hand. */
  function boardedFleet() {
    const store = new MemoryStore();
    const fleet = new Fleet(nextPrefix());
    const boards = [new StretchBoard(), new StretchBoard(), new StretchBoard()] as const;
    const [a, b, c] = ["a", "b", "c"].map((owner, i) =>
      fleet.add({ store, owner, heartbeatMs: 60_000, stretches: boards[i] }),
    ) as [ReplicaCensus, ReplicaCensus, ReplicaCensus];
    const beatAll = async () => {
      for (const m of [a, b, c]) await m.beat();
    };
    return { store, fleet, boards, b, beatAll };
  }

  it("each replica applies the largest factor a live replica has for a host; a replica that leaves takes its own with it", async () => {
    const { store, fleet, boards, b, beatAll } = boardedFleet();
    const factors = (host: string) => boards.map((board) => board.factorOf(host));
    try {
      await beatAll();
      assert.deepEqual(factors("hub.test"), [1, 1, 1], "nobody stretches");
      boards[0].publish("hub.test", 4);
      boards[1].publish("hub.test", 2);
      boards[1].publish("ghcr.test", 8);
      await beatAll();
      await beatAll();
      // A replica's own factor is not its peers': BudgetStretch takes the larger of the two.
      assert.deepEqual(factors("hub.test"), [2, 4, 4]);
      assert.deepEqual(factors("ghcr.test"), [8, 1, 8]);
      assert.deepEqual(factors("quay.test"), [1, 1, 1]);
      boards[0].publish("hub.test", 1);
      await beatAll();
      assert.deepEqual(factors("hub.test"), [2, 1, 2], "relaxed back to the next largest");
      await b.stop();
      await beatAll();
      const left = (host: string) => [boards[0].factorOf(host), boards[2].factorOf(host)];
      assert.deepEqual(left("ghcr.test"), [1, 1], "a replica gone takes its stretch with it");
      assert.deepEqual(left("hub.test"), [1, 1]);
      assert.deepEqual(fleet.violations, []);
    } finally {
      await fleet.stop();
      await store.close();
    }
  });

  it("each replica knows which hosts the live others still fill; a replica that leaves stops filling", async () => {
    const { store, fleet, boards, b, beatAll } = boardedFleet();
    const elsewhere = (host: string) => boards.map((board) => board.fillingElsewhere(host));
    try {
      await beatAll();
      assert.deepEqual(elsewhere("ghcr.test"), [false, false, false]);
      boards[1].publishFilling("ghcr.test", true);
      boards[2].publishFilling("quay.test", true);
      await beatAll();
      await beatAll();
      // Its own fill is not "elsewhere": the warmer asks its schedule for that.
      assert.deepEqual(elsewhere("ghcr.test"), [true, false, true]);
      assert.deepEqual(elsewhere("quay.test"), [true, true, false]);
      boards[2].publishFilling("quay.test", false);
      await beatAll(); // c writes last: the others read it at their next heartbeat
      await beatAll();
      assert.deepEqual(elsewhere("quay.test"), [false, false, false], "that fill is over");
      await b.stop();
      await beatAll();
      assert.deepEqual(
        [boards[0].fillingElsewhere("ghcr.test"), boards[2].fillingElsewhere("ghcr.test")],
        [false, false],
        "a replica gone fills nothing",
      );
    } finally {
      await fleet.stop();
      await store.close();
    }
  });

  it("a record's stretches that do not decode are ignored; the member's shares still count", async () => {
    const store = new MemoryStore();
    const prefix = nextPrefix();
    const fleet = new Fleet(prefix);
    const board = new StretchBoard();
    const census = fleet.add({ store, owner: "reader", heartbeatMs: 60_000, stretches: board });
    const key = `${prefix}replicas`;
    const write = (x: unknown) =>
      store.set(
        key,
        new Date(Date.now() + 60_000),
        new TextEncoder().encode(
          JSON.stringify({ v: 1, members: { other: { seq: 1, share: 0.5, x } } }),
        ),
      );
    try {
      await write({ "hub.test": 1e9 });
      await census.start();
      assert.equal(board.factorOf("hub.test"), 1, "a factor past 16 is not one");
      assert.deepEqual(census.view, { replicas: 2, share: 0.5 }, "its share still counts");
      await write({ "hub.test": 4 });
      await census.beat();
      // The same seq: the census saw no heartbeat, so the record's new stretch is not read.
      assert.equal(board.factorOf("hub.test"), 1);
    } finally {
      await fleet.stop();
      await store.close();
    }
  });
});

describe("ReplicaCensus: each host's budget divided by demand", () => {
  it("fairParts: needs met in order, the rest split, what nobody needs spread evenly", () => {
    const close = (a: number[], b: number[]) =>
      assert.ok(
        a.length === b.length && a.every((x, i) => Math.abs(x - (b[i] ?? Number.NaN)) < 1e-9),
        `${a} vs ${b}`,
      );
    close(fairParts([Infinity, 0.05, 0.05]), [0.9, 0.05, 0.05]);
    close(fairParts([Infinity, Infinity, 0.2]), [0.4, 0.4, 0.2]);
    close(fairParts([0.05, 0.05]), [0.5, 0.5]);
    close(fairParts([0.3, 0.6, 0.9]), [0.3, 0.35, 0.35]);
    close(fairParts([Infinity]), [1]);
  });

  it("needsOf: the replicas that ask little of a host share 5% of it as their floor", () => {
    const close = (a: number[], b: number[]) =>
      assert.ok(
        a.length === b.length &&
          a.every((x, i) => x === b[i] || Math.abs(x - (b[i] ?? Number.NaN)) < 1e-9),
        `${a} vs ${b}`,
      );
    assert.equal(MIN_NEED, 0.05);
    close(needsOf([Infinity, 0, 0]), [Infinity, 0.025, 0.025]);
    close(needsOf([Infinity, 0.04, 0]), [Infinity, 0.04, 0.025]);
    close(needsOf([Infinity, 0.3]), [Infinity, 0.3]);
    close(needsOf([0]), [0.05]);
    // Ten replicas, one left filling a host: it gets 95% of it, where a floor of 5% each
    // left it 55%.
    const ten = [Infinity, ...new Array<number>(9).fill(0)];
    close(fairParts(needsOf(ten)).slice(0, 1), [0.95]);
    close(fairParts(ten.map((a) => Math.max(a, 0.05))).slice(0, 1), [0.55]);
  });

  it("the replica whose requests queue gets nearly all of the host, never above the whole", async () => {
    const store = new MemoryStore();
    const fleet = new Fleet(nextPrefix());
    const HOST = "registry.example:5000";
    const QUIET = "quiet.example";
    fleet.hosts.add(HOST);
    fleet.hosts.add(QUIET);
    // What each replica's limiter would report: `busy` queues for HOST, the other two ask little.
    const asks = new Map<string, HostWant>();
    const wants = (owner: string) => () =>
      new Map<string, HostWant>([
        [HOST, asks.get(owner) ?? { share: 0, limited: false }],
        [QUIET, { share: 0, limited: false }],
      ]);
    const members = ["busy", "idle-1", "idle-2"].map((owner) =>
      fleet.add({ store, owner, heartbeatMs: 60_000, wants: wants(owner) }),
    );
    const [busy, idle1, idle2] = members as [ReplicaCensus, ReplicaCensus, ReplicaCensus];
    const beatAll = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) for (const m of members) await m.beat();
    };
    try {
      for (const m of members) await m.start();
      await beatAll(2);
      for (const m of members) {
        assert.ok(Math.abs(m.shareOf(HOST) - 1 / 3) < 1e-6, "equal while nobody queues");
      }
      asks.set("busy", { share: 0.33, limited: true });
      asks.set("idle-1", { share: 0.01, limited: false });
      await beatAll(3);
      // The two that ask little keep 5% between them as room to start, not 5% each.
      assert.ok(busy.shareOf(HOST) > 0.949, `busy: ${busy.shareOf(HOST)}`);
      assert.ok(idle1.shareOf(HOST) >= 0.025 - 1e-9, "an idle replica keeps room to start");
      assert.ok(idle2.shareOf(HOST) >= 0.025 - 1e-9, "so does the other");
      assert.ok(idle1.shareOf(HOST) + idle2.shareOf(HOST) <= 0.05 + 1e-9);
      assert.ok(Math.abs(busy.shareOf(QUIET) - 1 / 3) < 1e-6, "a quiet host stays shared equally");
      // The work moves: the other replica now queues, the first goes quiet.
      asks.set("busy", { share: 0, limited: false });
      asks.set("idle-2", { share: 0.05, limited: true });
      await beatAll(3);
      assert.ok(idle2.shareOf(HOST) > 0.949, `idle-2: ${idle2.shareOf(HOST)}`);
      assert.ok(busy.shareOf(HOST) <= 0.026);
      assert.deepEqual(fleet.violations, [], "no host's shares in use ever above the whole");
    } finally {
      await fleet.stop();
      await store.close();
    }
  });
});
