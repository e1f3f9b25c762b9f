/**
 * The warming loop's scheduler (issue 13) against a scripted registry on the real clock:
 * each repository is scanned again at its own interval, not when the lookup is asked again;
 * one slow host never holds up the others (a per-host cap); a repository whose lease another
 * warmer holds is looked at again within part of the lease TTL; the loop's scans check tags
 * whose own deadline is far off, so that a moved tag is seen within the interval.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Registry as MetricsRegistry } from "prom-client";
import { Keys } from "../../src/cache/keys.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import type { RepositoryScanResult, TagEvent } from "../../src/cache/warmer-types.js";
import { type ImageName, parseImageName } from "../../src/image/ref.js";
import type { Client, ClientFactory } from "../../src/registry/client.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { waitFor } from "../support/wait-for.js";
import {
  FakeClock,
  FakeFactory,
  type FakeRepository,
  fakeDigest,
  fakeRepository,
} from "./support/fake-registry.js";

const names = (host: string, n: number) =>
  Array.from({ length: n }, (_, i) => parseImageName(`${host}/team/r${i}`));
const lookupOf = (list: ImageName[]) => () =>
  new Map(list.map((n) => [n.toString(), Credentials.none()]));

/** One repository of 6 tags (2 images) with a 300 ms interval (or `intervalMs`), never backing off. */
function oneRepositoryWarmer(opts: { pollTags: boolean | undefined; intervalMs?: number }) {
  const [app] = names("registry.test", 1) as [ImageName];
  const repo = fakeRepository(app, 6, 2);
  const factory = new FakeFactory(new Map([[app.toString(), repo]]));
  const warmer = new Warmer({
    store: new MemoryStore(),
    factory,
    lookup: lookupOf([app]),
    intervalMs: 60_000,
    repositoryOptions: () => ({ intervalMs: opts.intervalMs ?? 300 }),
    maxIntervalFactor: 1,
    pollTags: opts.pollTags,
    metricsRegistry: new MetricsRegistry(),
  });
  return { app, repo, factory, warmer };
}

/** Runs the loop of `warmer` until `until` holds (bounded), then stops it. */
async function runUntil(warmer: Warmer, until: () => boolean, what: string): Promise<void> {
  const stop = new AbortController();
  const running = warmer.start(stop.signal);
  try {
    await waitFor(until, { what, timeoutMs: 20_000, intervalMs: 10 });
  } finally {
    stop.abort();
    await running;
  }
}

/**
 * A warmer whose rescans are late again and again (a 50 ms interval unless `intervalOf`
 * says otherwise, lease TTL 200 ms: late 50 ms past the due time), one scan of a host at
 * once and one request of a scan, with each repository's scans counted.
 */
function lateRescanWarmer(opts: {
  repos: Map<string, FakeRepository>;
  lookup: () => Map<string, Credentials>;
  lookupIntervalMs: number;
  concurrency: number;
  intervalOf?: (name: string) => number;
}): { warmer: Warmer; scanned: Map<string, number> } {
  const warmer = new Warmer({
    store: new MemoryStore(),
    factory: new FakeFactory(opts.repos),
    lookup: opts.lookup,
    intervalMs: opts.lookupIntervalMs,
    repositoryOptions: (name) => ({ intervalMs: opts.intervalOf?.(name) ?? 50 }),
    leaseTtlMs: 200,
    concurrency: opts.concurrency,
    perHostConcurrency: 1,
    burst: 1,
    maxIntervalFactor: 1,
    metricsRegistry: new MetricsRegistry(),
  });
  const scanned = new Map<string, number>();
  warmer.onScan((r) => {
    if (r.outcome === "scanned") scanned.set(r.repository, (scanned.get(r.repository) ?? 0) + 1);
  });
  return { warmer, scanned };
}

describe("Warmer loop scheduling", () => {
  it("scans each repository again at its own interval, not when the lookup is asked", async () => {
    const [fast, slow] = names("registry.test", 2) as [ImageName, ImageName];
    const repos = new Map<string, FakeRepository>([
      [fast.toString(), fakeRepository(fast, 3, 1)],
      [slow.toString(), fakeRepository(slow, 3, 1)],
    ]);
    let lookups = 0;
    const lookup = lookupOf([fast, slow]);
    const warmer = new Warmer({
      store: new MemoryStore(),
      factory: new FakeFactory(repos),
      lookup: () => {
        lookups++;
        return lookup();
      },
      // The lookup is asked once in this test: every rescan comes from the schedule.
      intervalMs: 60_000,
      repositoryOptions: (name) => ({ intervalMs: name === fast.toString() ? 200 : 30_000 }),
      maxIntervalFactor: 1,
      metricsRegistry: new MetricsRegistry(),
    });
    const scans: RepositoryScanResult[] = [];
    warmer.onScan((r) => scans.push(r));
    const scansOf = (n: ImageName) =>
      scans.filter((r) => r.repository === n.toString() && r.outcome === "scanned");
    await runUntil(warmer, () => scansOf(fast).length >= 4, "four scans of the fast repository");
    assert.equal(lookups, 1);
    assert.equal(scansOf(slow).length, 1);
    const starts = scansOf(fast).map((r) => r.startedAt.getTime());
    for (let i = 1; i < starts.length; i++) {
      const gap = (starts[i] as number) - (starts[i - 1] as number);
      assert.ok(gap >= 195 && gap < 2000, `rescanned after its interval (${gap} ms)`);
    }
    const status = warmer.repositoryStatus(fast);
    assert.equal(status?.intervalMs, 200);
    assert.ok(status?.nextRefresh, "the status says when it falls due");
  });

  it("starts a priority refresh while long scans hold every slot", async () => {
    const [slowName, other] = names("registry.test", 2) as [ImageName, ImageName];
    const repos = new Map<string, FakeRepository>([
      // 40 tags, 50 ms each, 1 at a time: the only slot is held for about 2 s.
      [slowName.toString(), { ...fakeRepository(slowName, 40, 40), delayMs: 50 }],
      [other.toString(), fakeRepository(other, 2, 1)],
    ]);
    const factory = new FakeFactory(repos);
    const warmer = new Warmer({
      store: new MemoryStore(),
      factory,
      lookup: lookupOf([slowName, other]),
      intervalMs: 60_000,
      concurrency: 1,
      burst: 1,
      metricsRegistry: new MetricsRegistry(),
    });
    const order: string[] = [];
    let slowDone = false;
    warmer.onScan((r) => {
      order.push(r.repository);
      if (r.repository === slowName.toString()) slowDone = true;
    });
    const stop = new AbortController();
    const running = warmer.start(stop.signal);
    try {
      await waitFor(() => factory.counts(slowName.toString()).tags > 0, {
        what: "the slow scan",
        timeoutMs: 10_000,
        intervalMs: 5,
      });
      warmer.prioritize(other);
      await waitFor(() => order.includes(other.toString()), {
        what: "the priority refresh",
        timeoutMs: 10_000,
        intervalMs: 5,
      });
      assert.equal(slowDone, false, "the refresh ran while the slow scan held the only slot");
    } finally {
      stop.abort();
      await running;
    }
  });

  it("starts a repository late against its bound while a long scan holds its host's only slot", async () => {
    // Issue 13, acceptance 7: a repository is listed within lease TTL + its interval. Here
    // its interval is 200 ms and the TTL 400 ms (late 100 ms past its due time); the slow
    // repository's scan holds the only worker and its host's only slot for about 3 s, and
    // before, the other one waited for that scan to end.
    const [quick, slowName] = names("registry.test", 2) as [ImageName, ImageName];
    const repos = new Map<string, FakeRepository>([
      [quick.toString(), fakeRepository(quick, 2, 1)],
      // 60 tags, 50 ms each, 1 at a time.
      [slowName.toString(), { ...fakeRepository(slowName, 60, 60), delayMs: 50 }],
    ]);
    // Whether each listing of the quick repository asked to go ahead at the rate limiter.
    const listedAhead: boolean[] = [];
    const fake = new FakeFactory(repos);
    const factory: ClientFactory = {
      clientFor: (name, creds, opts) => {
        const client = fake.clientFor(name, creds, opts);
        if (name.toString() !== quick.toString()) return client;
        return {
          ...client,
          tags: (o) => {
            listedAhead.push(opts?.priority === true);
            return client.tags(o);
          },
        };
      },
      succeed: (name) => fake.succeed(name),
    };
    const warmer = new Warmer({
      store: new MemoryStore(),
      factory,
      lookup: lookupOf([quick, slowName]),
      intervalMs: 60_000,
      repositoryOptions: (name) => ({ intervalMs: name === quick.toString() ? 200 : 60_000 }),
      leaseTtlMs: 400,
      concurrency: 1,
      perHostConcurrency: 1,
      burst: 1,
      maxIntervalFactor: 1,
      metricsRegistry: new MetricsRegistry(),
    });
    const scans: Array<{ repository: string; outcome: string; at: number }> = [];
    warmer.onScan((r) =>
      scans.push({ repository: r.repository, outcome: r.outcome, at: performance.now() }),
    );
    const quickScans = () =>
      scans.filter((r) => r.repository === quick.toString() && r.outcome === "scanned");
    await runUntil(warmer, () => quickScans().length >= 3, "three scans of the quick repository");
    // The slow scan is aborted when the loop stops, not finished before.
    const slowDone = scans.find(
      (r) => r.repository === slowName.toString() && r.outcome !== "aborted",
    );
    assert.equal(slowDone, undefined, "rescanned twice while the slow scan held the slot");
    const [first, second, third] = quickScans().map((r) => r.at) as [number, number, number];
    for (const gap of [second - first, third - second]) {
      assert.ok(gap < 1000, `rescanned ${Math.round(gap)} ms after its last scan (bound 600)`);
    }
    // Its cold scan queued as usual; each late rescan's listing went ahead of other scans'
    // requests (at a saturated budget it waited seconds behind them).
    assert.deepEqual(listedAhead.slice(0, 3), [false, true, true]);
  });

  it("keeps one slow host to its cap while the other hosts' repositories are scanned", async () => {
    const slow = names("slow.test", 3);
    const fast = [...names("fast.test", 4), ...names("quick.test", 4)];
    const repos = new Map<string, FakeRepository>();
    for (const n of slow) repos.set(n.toString(), { ...fakeRepository(n, 30, 30), delayMs: 25 });
    for (const n of fast) repos.set(n.toString(), { ...fakeRepository(n, 2, 1), delayMs: 2 });
    // Scans in flight per host: from the listing (a scan's first request) to its result.
    const scanning = new Map<string, Set<string>>();
    const most = new Map<string, number>();
    const fake = new FakeFactory(repos);
    const factory: ClientFactory = {
      clientFor: (name, creds, opts) => {
        const client = fake.clientFor(name, creds, opts);
        const tracked: Client = {
          ...client,
          tags: (o) => {
            const host = name.domain;
            const set = scanning.get(host) ?? new Set<string>();
            set.add(name.toString());
            scanning.set(host, set);
            most.set(host, Math.max(most.get(host) ?? 0, set.size));
            return client.tags(o);
          },
        };
        return tracked;
      },
      succeed: (name) => fake.succeed(name),
    };
    const warmer = new Warmer({
      store: new MemoryStore(),
      factory,
      // Slow first in the lookup: in lookup order alone they would take every worker.
      lookup: lookupOf([...slow, ...fast]),
      intervalMs: 60_000,
      concurrency: 3,
      perHostConcurrency: 1,
      burst: 2,
      metricsRegistry: new MetricsRegistry(),
    });
    const order: string[] = [];
    warmer.onScan((r) => {
      scanning.get(parseImageName(r.repository).domain)?.delete(r.repository);
      order.push(r.repository);
    });
    await runUntil(warmer, () => order.length >= fast.length + 1, "the fast hosts' scans");
    assert.equal(most.get("slow.test"), 1, "never more than the cap of one host");
    assert.equal(most.get("fast.test"), 1);
    assert.deepEqual(
      order.slice(0, fast.length).sort(),
      fast.map(String).sort(),
      "every small repository of the other hosts before the first slow one",
    );
  });

  it("keeps the tags of the repositories it scans at once within maxTagsInFlight", async () => {
    // Two 40-tag repositories on two hosts against a bound of 60 tags: once each has been
    // listed (a first scan weighs nothing until then), their scans never overlap, while
    // small repositories (light: 2 tags) are scanned beside either.
    const big = [...names("a.test", 1), ...names("b.test", 1)];
    const small = names("c.test", 3);
    const repos = new Map<string, FakeRepository>();
    for (const n of big) repos.set(n.toString(), { ...fakeRepository(n, 40, 4), delayMs: 15 });
    for (const n of small) repos.set(n.toString(), { ...fakeRepository(n, 2, 1), delayMs: 2 });
    const scanning = new Set<string>();
    const scanned = new Map<string, number>();
    let overlaps = 0;
    let mostGauge = 0;
    const metricsRegistry = new MetricsRegistry();
    const readGauge = async () =>
      (await metricsRegistry.getSingleMetric("regscan_warmer_scan_tags_in_flight")?.get())
        ?.values[0]?.value ?? -1;
    const fake = new FakeFactory(repos);
    const factory: ClientFactory = {
      clientFor: (name, creds, opts) => {
        const client = fake.clientFor(name, creds, opts);
        return {
          ...client,
          tags: (o) => {
            const repository = name.toString();
            scanning.add(repository);
            const listedOnce = big.every((b) => (scanned.get(b.toString()) ?? 0) > 0);
            if (listedOnce && big.every((b) => scanning.has(b.toString()))) overlaps++;
            void readGauge().then((v) => {
              mostGauge = Math.max(mostGauge, v);
            });
            return client.tags(o);
          },
        };
      },
      succeed: (name) => fake.succeed(name),
    };
    const warmer = new Warmer({
      store: new MemoryStore(),
      factory,
      lookup: lookupOf([...big, ...small]),
      intervalMs: 60_000,
      repositoryOptions: () => ({ intervalMs: 100 }),
      maxIntervalFactor: 1,
      concurrency: 4,
      perHostConcurrency: 2,
      burst: 2,
      maxTagsInFlight: 60,
      metricsRegistry,
    });
    warmer.onScan((r) => {
      scanning.delete(r.repository);
      scanned.set(r.repository, (scanned.get(r.repository) ?? 0) + 1);
    });
    await runUntil(
      warmer,
      () => big.every((b) => (scanned.get(b.toString()) ?? 0) >= 4),
      "four scans of each large repository",
    );
    assert.equal(overlaps, 0, "the large repositories' rescans never overlapped");
    assert.ok(mostGauge >= 40, `the metric showed ${mostGauge} tags in flight`);
    assert.equal(await readGauge(), 0, "and none once stopped");
    for (const n of small) {
      assert.ok((scanned.get(n.toString()) ?? 0) >= 4, `${n} scanned beside them`);
    }
  });

  it("keeps a host's cold fill going while late rescans of other hosts fill the urgent lane", async () => {
    // bench:scale at 10,000 repositories: once nine registries were filled, their rescans
    // (slow at saturated budgets) were late in a steady stream and held every scan of both
    // lanes; the Docker Hub-like registry's last 166 repositories were never started again.
    // Here two hosts' rescans are always late (late 100 ms past the last scan, against scans
    // of about 250 ms), four of them a host (twice the two workers) with room for two each;
    // a third host's repositories come later.
    const busy = [...names("a.test", 4), ...names("b.test", 4)];
    const cold = names("cold.test", 4);
    const repos = new Map<string, FakeRepository>();
    for (const n of busy) repos.set(n.toString(), { ...fakeRepository(n, 3, 1), delayMs: 60 });
    for (const n of cold) repos.set(n.toString(), fakeRepository(n, 1, 1));
    let watched = busy;
    // The lookup is asked again every 300 ms: the cold host's repositories join at one.
    const { warmer, scanned } = lateRescanWarmer({
      repos,
      lookup: () => lookupOf(watched)(),
      lookupIntervalMs: 300,
      concurrency: 2,
    });
    let joined = 0;
    await runUntil(
      warmer,
      () => {
        if (joined === 0 && busy.every((n) => (scanned.get(n.toString()) ?? 0) >= 2)) {
          // Every busy repository rescanned: late rescans hold both lanes from here on.
          watched = [...busy, ...cold];
          joined = performance.now();
        }
        return joined > 0 && cold.every((n) => scanned.has(n.toString()));
      },
      "the cold host's fill, among late rescans",
    );
    const took = performance.now() - joined;
    // Joined at the next lookup (within 300 ms), then one scan of a few ms each as regular
    // slots free (every 250 ms or so). Before, none was started within the test's 20 s.
    assert.ok(took < 5000, `the cold host's repositories took ${Math.round(took)} ms to fill`);
  });

  it("starts a priority request while late rescans hold both lanes", async () => {
    // Late rescans take the regular lane and the late one; a webhook's scan (a few
    // requests) must not wait for one of them to end. Here they never end: each rescan of
    // the busy host waits on a gate until the test is over.
    const busy = names("a.test", 3);
    const [hook] = names("hook.test", 1) as [ImageName];
    const repos = new Map<string, FakeRepository>();
    for (const n of busy) repos.set(n.toString(), fakeRepository(n, 2, 1));
    repos.set(hook.toString(), fakeRepository(hook, 2, 1));
    let open = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    // The hook is not due again: only its priority request scans it a second time.
    const { warmer, scanned } = lateRescanWarmer({
      repos,
      lookup: lookupOf([...busy, hook]),
      lookupIntervalMs: 60_000,
      concurrency: 1,
      intervalOf: (name) => (name === hook.toString() ? 60_000 : 50),
    });
    const stop = new AbortController();
    const running = warmer.start(stop.signal);
    try {
      await waitFor(() => [...busy, hook].every((n) => scanned.has(n.toString())), {
        what: "a first scan of every repository",
        timeoutMs: 10_000,
        intervalMs: 5,
      });
      for (const n of busy) (repos.get(n.toString()) as FakeRepository).gate = gate;
      // Two rescans in flight, gated: the regular lane's one worker and the late lane's.
      await sleep(300);
      warmer.prioritize(hook);
      await waitFor(() => scanned.get(hook.toString()) === 2, {
        what: "the priority request's scan",
        timeoutMs: 3_000,
        intervalMs: 5,
      });
    } finally {
      open();
      stop.abort();
      await running;
    }
  });

  it("looks again at a repository another warmer's lease held after part of the lease TTL", async () => {
    // Acceptance 7 of issue 13: a replica that dies mid-scan leaves its lease for at most a
    // TTL, and the repository must be listed again within TTL + its interval; a look an
    // interval after the skip (60 s here) came an interval too late.
    const [app] = names("registry.test", 1) as [ImageName];
    const clock = new FakeClock(Date.now());
    const store = new MemoryStore({ now: clock.now });
    const keys = new Keys();
    const ttlMs = 4000;
    // Held by a replica on another host (a dead process of this host is taken over at once).
    assert.ok(await store.acquire(keys.lease(app), ttlMs, "gone"));
    const holder = JSON.stringify({ owner: "gone", host: "elsewhere", pid: 1, since: clock.ms });
    await store.set(
      keys.leaseHolder(app),
      new Date(clock.ms + 60_000),
      new TextEncoder().encode(holder),
    );
    const factory = new FakeFactory(new Map([[app.toString(), fakeRepository(app, 3, 1)]]));
    const warmer = new Warmer({
      store,
      factory,
      lookup: lookupOf([app]),
      now: clock.now,
      intervalMs: 60_000,
      leaseTtlMs: ttlMs,
      maxIntervalFactor: 1,
      metricsRegistry: new MetricsRegistry(),
    });
    const results: Array<{ outcome: string; at: number; realAt: number }> = [];
    warmer.onScan((r) => {
      results.push({ outcome: r.outcome, at: clock.ms, realAt: performance.now() });
    });
    let jumped = false;
    await runUntil(
      warmer,
      () => {
        // The holder dies at the skip: its lease runs out one TTL later. The loop sleeps on
        // real timers of what the fake clock says is left until the next look (a quarter of
        // the TTL, at least a second), so the clock jumps once the skip is scheduled.
        if (!jumped && results.length > 0) {
          jumped = true;
          setTimeout(() => clock.advance(ttlMs), 50);
        }
        return results.some((r) => r.outcome === "scanned");
      },
      "a scan once the lease ran out",
    );
    const [skip, scanned] = results;
    assert.equal(skip?.outcome, "skipped-lease");
    assert.equal(scanned?.outcome, "scanned", "taken at the next look");
    const real = (scanned?.realAt ?? 0) - (skip?.realAt ?? 0);
    // Before, the next look was an interval (60 s) after the skip: past the test's deadline.
    assert.ok(real >= 900 && real < 3000, `looked again ${Math.round(real)} ms after the skip`);
  });

  it("holds back tag polling while another warmer's first scan of a repository of the host goes on", async () => {
    // Replicas take a fill's repositories in the same order, so each finds most of a host's
    // held by the others: counted as scanned, they ended the host's fill for this warmer,
    // whose rescans then checked every tag (a HEAD each) with the budget the fill needed.
    const [app, held] = names("registry.test", 2) as [ImageName, ImageName];
    const store = new MemoryStore();
    const keys = new Keys();
    assert.ok(await store.acquire(keys.lease(held), 60_000, "other"));
    const holder = JSON.stringify({ owner: "other", host: "elsewhere", pid: 1, since: Date.now() });
    await store.set(
      keys.leaseHolder(held),
      new Date(Date.now() + 60_000),
      new TextEncoder().encode(holder),
    );
    const factory = new FakeFactory(
      new Map([
        [app.toString(), fakeRepository(app, 6, 2)],
        [held.toString(), fakeRepository(held, 3, 1)],
      ]),
    );
    const warmer = new Warmer({
      store,
      factory,
      lookup: lookupOf([app, held]),
      intervalMs: 60_000,
      repositoryOptions: () => ({ intervalMs: 300 }),
      maxIntervalFactor: 1,
      metricsRegistry: new MetricsRegistry(),
    });
    const scans: RepositoryScanResult[] = [];
    warmer.onScan((r) => {
      scans.push(r);
      if (r.repository === app.toString() && r.outcome === "scanned" && r.refreshed === 6)
        factory.reset();
    });
    const appScans = () =>
      scans.filter((r) => r.repository === app.toString() && r.outcome === "scanned").length;
    const stop = new AbortController();
    const running = warmer.start(stop.signal);
    try {
      await waitFor(() => appScans() >= 4, { what: "four scans of app", timeoutMs: 20_000 });
      assert.ok(
        scans.filter((r) => r.repository === held.toString() && r.outcome === "skipped-lease")
          .length >= 2,
        "held's lease was looked at and found held more than once",
      );
      assert.equal(factory.counts(app.toString()).head, 0, "app's rescans checked no tag");
      assert.ok(factory.counts(app.toString()).tags >= 3, "app was listed at each rescan");
      // The other warmer's scan ends (here: its lease goes, and this warmer scans it): the
      // host's fill is over, and app's next rescans check its tags within the interval.
      await store.release(keys.lease(held), "other");
      await waitFor(() => factory.counts(app.toString()).head >= 6, {
        what: "app's tags checked once the host's fill is over",
        timeoutMs: 20_000,
      });
      assert.ok(
        scans.some((r) => r.repository === held.toString() && r.outcome === "scanned"),
        "held scanned once its lease was free",
      );
    } finally {
      stop.abort();
      await running;
    }
  });

  it("checks tags whose own deadline is far off within the repository's interval", async () => {
    const { app, repo, factory, warmer } = oneRepositoryWarmer({ pollTags: undefined });
    const events: TagEvent[] = [];
    warmer.onTagEvent((e) => events.push(e));
    let scans = 0;
    let movedAt = 0;
    let firstRefreshed = 0;
    warmer.onScan((r) => {
      scans++;
      if (scans === 1) {
        firstRefreshed = r.refreshed;
        // Every tag is fresh for an hour now; the next scans check them all the same.
        repo.tags.set("v0", fakeDigest(2));
        movedAt = performance.now();
        factory.reset();
      }
    });
    await runUntil(warmer, () => events.some((e) => e.type === "moved-tag"), "the moved tag");
    assert.equal(firstRefreshed, 6);
    const seenAfter = performance.now() - movedAt;
    assert.ok(seenAfter < 1500, `seen ${Math.round(seenAfter)} ms after the move (interval 300)`);
    const c = factory.counts(app.toString());
    assert.equal(c.head, 6, "one HEAD per tag in the second scan");
    assert.equal(c.manifest, 0, "the new digest's image was known");
    // A one-off pass (regscan scan) keeps the tags' own deadlines.
    factory.reset();
    const [once] = await warmer.scan([{ name: app }]);
    assert.equal(once?.fresh, 6);
    assert.equal(factory.counts(app.toString()).head, 0);
  });

  it("with pollTags off, leaves tags to their own deadlines", async () => {
    const { app, factory, warmer } = oneRepositoryWarmer({ pollTags: false });
    const results: RepositoryScanResult[] = [];
    warmer.onScan((r) => {
      results.push(r);
      if (results.length === 1) factory.reset();
    });
    await runUntil(warmer, () => results.length >= 3, "three scans");
    assert.equal(results[0]?.refreshed, 6);
    const c = factory.counts(app.toString());
    assert.equal(c.head, 0, "no HEAD for tags fresh for an hour");
    assert.ok(c.tags >= 2, `listed at each scan (${c.tags})`);
  });

  it("starts the next scan early by the last one's length while the host has budget to spare", async () => {
    const gapsAt = async (utilisation: number) => {
      const { repo, factory, warmer } = oneRepositoryWarmer({ pollTags: true, intervalMs: 1_200 });
      repo.delayMs = 40;
      factory.hostConditions = () => ({
        pullQuota: false,
        saturated: false,
        utilisation,
        requests: 0,
        waitedMs: 0,
      });
      const scans: RepositoryScanResult[] = [];
      warmer.onScan((r) => {
        if (r.outcome === "scanned") scans.push(r);
      });
      await runUntil(warmer, () => scans.length >= 4, "four scans");
      // From the second scan on: the first one's end may still count as the host's fill.
      return scans.slice(1).flatMap((r, i) => {
        const next = scans[i + 2];
        if (next === undefined) return [];
        return [{ gap: next.startedAt.getTime() - r.startedAt.getTime(), took: r.durationMs }];
      });
    };
    // Interval 1.2 s: early by the scan's length (each request 40 ms; at most 300 ms, and
    // never sooner than a second after the scan's end). The loop's own lateness (tens of ms)
    // is in both runs' gaps: their difference is the early start.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const room = await gapsAt(0.1);
    const busy = await gapsAt(0.9);
    assert.ok(room.length >= 2 && busy.length >= 2);
    const early = Math.min(300, mean(room.map((g) => g.took)));
    assert.ok(early >= 40, `scans of ${early} ms`);
    for (const { gap } of busy)
      assert.ok(gap >= 295, `${gap} ms between starts at 90% of the budget`);
    const sooner = mean(busy.map((g) => g.gap)) - mean(room.map((g) => g.gap));
    assert.ok(
      sooner >= early / 2 && sooner <= early + 40,
      `started ${Math.round(sooner)} ms sooner with room, scans of ${Math.round(early)} ms`,
    );
  });
});
