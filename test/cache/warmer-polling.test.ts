/**
 * Polling only (issue 13, acceptance 5), against the registry-fleet simulator: the warming
 * loop checks every kept tag once per repository interval with HEAD (whatever the tag's own
 * refresh deadline), so a moved tag is seen within about one interval; and what that costs,
 * in requests, against a pass that lists each repository and checks nothing.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { everyPersonality } from "../../bench/sim/fleets.js";
import { Simulator } from "../../bench/sim/simulator.js";
import type { Counts } from "../../bench/sim/stats.js";
import type { StretchPeers } from "../../src/cache/budget-stretch.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import type { RepositoryScanResult, TagEvent } from "../../src/cache/warmer-types.js";
import { type ImageName, parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { waitFor } from "../support/wait-for.js";

const INTERVAL_MS = 1000;
const REPOSITORIES = 8;
const TAGS = 120;

let sim: Simulator;
let names: ImageName[];

before(async () => {
  sim = await Simulator.start({
    registries: everyPersonality({
      seed: "polling",
      repositories: REPOSITORIES,
      tags: TAGS,
    }).filter((r) => r.name === "distribution3" || r.name === "quay"),
  });
  names = sim.registries.flatMap((r) =>
    r.content.repositories().map((repo) => parseImageName(`${r.host}/${repo}`)),
  );
});

after(async () => {
  await sim?.stop();
});

/** Requests of every simulated registry so far, by kind. */
function totals(): Pick<Counts, "total" | "tags" | "manifestHead" | "manifestGet" | "blob"> {
  const sum = { total: 0, tags: 0, manifestHead: 0, manifestGet: 0, blob: 0 };
  for (const r of sim.registries) {
    const t = r.stats.totals;
    sum.total += t.total;
    sum.tags += t.tags;
    sum.manifestHead += t.manifestHead;
    sum.manifestGet += t.manifestGet;
    sum.blob += t.blob;
  }
  return sum;
}

type Totals = ReturnType<typeof totals>;

function minus(a: Totals, b: Totals): Totals {
  return {
    total: a.total - b.total,
    tags: a.tags - b.tags,
    manifestHead: a.manifestHead - b.manifestHead,
    manifestGet: a.manifestGet - b.manifestGet,
    blob: a.blob - b.blob,
  };
}

/** A warmer of every simulated repository, each with a 1 s interval, never stretched. */
function pollingWarmer(stretchPeers?: StretchPeers): {
  factory: RemoteClientFactory;
  warmer: Warmer;
} {
  const factory = new RemoteClientFactory({ insecureHosts: sim.registries.map((r) => r.host) });
  const warmer = new Warmer({
    store: new MemoryStore(),
    factory,
    lookup: () => new Map(names.map((n) => [n.toString(), Credentials.none()])),
    intervalMs: 60_000,
    repositoryOptions: () => ({ intervalMs: INTERVAL_MS }),
    maxIntervalFactor: 1,
    metricsRegistry: new MetricsRegistry(),
    stretchPeers,
  });
  return { factory, warmer };
}

describe("Warmer polling against the simulator", () => {
  it("sees moved tags within about one interval, for one HEAD per tag per interval", async (t) => {
    const { factory, warmer } = pollingWarmer();
    const scans: RepositoryScanResult[] = [];
    warmer.onScan((r) => scans.push(r));
    const events: TagEvent[] = [];
    warmer.onTagEvent((e) => events.push(e));
    let tags = 0;
    const stop = new AbortController();
    const running = warmer.start(stop.signal);
    try {
      await waitFor(
        () =>
          new Set(scans.filter((r) => r.outcome === "scanned").map((r) => r.repository)).size ===
          names.length,
        { what: "a first scan of every repository", timeoutMs: 60_000, intervalMs: 20 },
      );
      tags = sim.registries.reduce(
        (n, r) => n + r.content.repositories().reduce((m, repo) => m + r.content.tagCount(repo), 0),
        0,
      );

      // Steady state, nothing changing: what the loop asks until every tag was checked
      // twice (the default budget, 200 requests/s per host, may stretch the interval).
      const steadyFrom = totals();
      const steadyStarted = performance.now();
      await waitFor(() => totals().manifestHead - steadyFrom.manifestHead >= 2 * tags, {
        what: "every tag checked twice",
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      const steady = minus(totals(), steadyFrom);
      const steadyMs = performance.now() - steadyStarted;
      const applied = Math.max(...warmer.status().map((s) => s.intervalMs ?? 0));
      const perApplied = (n: number) => Math.round((n * applied) / steadyMs);
      t.diagnostic(
        `polling: ${tags} tags in ${names.length} repositories; interval ${INTERVAL_MS} ms, applied ${applied} ms (budget stretch); per applied interval ${perApplied(steady.manifestHead)} HEADs, ${perApplied(steady.tags)} listings, ${perApplied(steady.total)} requests (${steady.total} in ${Math.round(steadyMs)} ms, ${steady.manifestGet} GETs)`,
      );
      // At most once per half interval each (TAG_CHECK_FRACTION), whatever the stretch.
      assert.ok(
        steady.manifestHead <= tags * (2 * (steadyMs / INTERVAL_MS) + 1),
        `no tag checked more than once per half interval (${steady.manifestHead} HEADs in ${Math.round(steadyMs)} ms)`,
      );
      assert.equal(steady.manifestGet, 0, "nothing changed: no GET");

      // Moves, polling only: each seen within about one interval.
      const churn = await sim.startChurn({
        perSecond: 10,
        moveShare: 1,
        hotShare: 0,
        seed: "poll",
      });
      await new Promise((r) => setTimeout(r, 1500));
      await churn.stop();
      const changes = [...churn.changes];
      const seenAt = (c: (typeof changes)[number]) =>
        events
          .find(
            (e) =>
              e.type === "moved-tag" &&
              e.repository.endsWith(`/${c.repository}`) &&
              e.tag === c.tag &&
              e.at.getTime() >= c.at,
          )
          ?.at.getTime();
      await waitFor(() => changes.every((c) => seenAt(c) !== undefined), {
        what: "every moved tag to be seen",
        timeoutMs: 20_000,
        intervalMs: 20,
      });
      const staleness = changes.map((c) => (seenAt(c) as number) - c.at).sort((a, b) => a - b);
      const p = (q: number) =>
        staleness[Math.min(staleness.length - 1, Math.floor(q * staleness.length))];
      t.diagnostic(
        `moved tags (${changes.length}) seen after p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${staleness.at(-1)} ms (interval ${INTERVAL_MS} ms)`,
      );
      assert.ok(changes.length >= 8, `the churn moved tags (${changes.length})`);
      // One interval, plus one scan's length (a busy machine makes both late).
      assert.ok(
        (staleness.at(-1) as number) < 4 * INTERVAL_MS,
        `every move seen within the interval and a scan (${staleness.join(", ")} ms)`,
      );
    } finally {
      stop.abort();
      await running;
    }

    // Against a pass that only lists (the tags' own deadlines, an hour away): the cost.
    const onceFrom = totals();
    const results = await warmer.scan(names.map((name) => ({ name })));
    const once = minus(totals(), onceFrom);
    assert.ok(results.every((r) => r.outcome === "scanned"));
    t.diagnostic(
      `without polling one pass is ${once.total} requests (${once.tags} listings, ${once.manifestHead} HEADs)`,
    );
    // Only tags whose last check failed or was cut by the stop are retried.
    assert.ok(once.manifestHead < tags / 10, "the tags' own deadlines are an hour away");
    await factory.close();
  });

  it("polls no kept tag of a host another replica still fills, and tells when its own fills end", async () => {
    const [filled, polled] = ["quay", "distribution3"].map((n) => {
      const r = sim.registries.find((x) => x.name === n);
      if (!r) throw new Error(`no ${n} registry`);
      return r;
    }) as [Simulator["registries"][number], Simulator["registries"][number]];
    const heads = (r: typeof filled) => r.stats.totals.manifestHead;
    const tagsOf = (r: typeof filled) =>
      r.content.repositories().reduce((m, repo) => m + r.content.tagCount(repo), 0);
    const told: string[] = [];
    // The census's part: another replica still fills `filled`'s host, none fills the other.
    const peers: StretchPeers = {
      publish: () => {},
      factorOf: () => 1,
      publishFilling: (host, filling) => told.push(`${host} ${filling}`),
      fillingElsewhere: (host) => host === filled.host.toLowerCase(),
    };
    const { factory, warmer } = pollingWarmer(peers);
    const scanned = new Set<string>();
    warmer.onScan((r) => {
      if (r.outcome === "scanned") scanned.add(r.repository);
    });
    const stop = new AbortController();
    const running = warmer.start(stop.signal);
    try {
      await waitFor(() => scanned.size === names.length, {
        what: "a first scan of every repository",
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      for (const r of [filled, polled]) {
        const host = r.host.toLowerCase();
        assert.deepEqual(
          told.filter((t) => t.startsWith(`${host} `)),
          [`${host} true`, `${host} false`],
          "its own fill of each host began, then ended",
        );
      }
      const from = { filled: heads(filled), polled: heads(polled) };
      await waitFor(() => heads(polled) - from.polled >= 2 * tagsOf(polled), {
        what: "every kept tag of the other host checked twice",
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      const filledHeads = heads(filled) - from.filled;
      assert.ok(
        filledHeads < tagsOf(filled) / 10,
        `the host another replica fills is not polled (${filledHeads} HEADs for ${tagsOf(filled)} tags, while the other's were checked twice)`,
      );
    } finally {
      stop.abort();
      await running;
      await factory.close();
    }
  });
});
