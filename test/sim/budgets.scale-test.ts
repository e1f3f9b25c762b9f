/**
 * Request and pull budgets against the simulator's Docker Hub personality (issue 13,
 * acceptance 2, bounded): a few hundred requests from concurrent workers never put more than
 * the host's budget into any 10 s window of the simulator's own per-second counts, and
 * `ratelimit-remaining` never falls below a fifth of its limit, with no 429.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { SimRegistry } from "../../bench/sim/registry-server.js";
import { Simulator } from "../../bench/sim/simulator.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { RateLimiters } from "../../src/registry/http/rate-limiters.js";

const BUDGET = { rps: 40, burst: 10 };
// A short window so that the run sees the quota refill: 100 pulls per 5 s, 20 never spent.
const QUOTA = { limit: 100, windowSeconds: 5 };
let sim: Simulator;
let hub: SimRegistry;

before(async () => {
  sim = await Simulator.start({
    registries: [
      {
        name: "hub",
        personality: "dockerhub",
        fleet: { seed: "budgets", repositories: 12, tags: 150 },
        pullQuota: QUOTA,
      },
    ],
  });
  hub = sim.registry("hub");
});

after(async () => {
  await sim?.stop();
});

test("Docker Hub: no 10 s window above the request budget, ratelimit-remaining never under 20% of the limit", async (t) => {
  const limiters = new RateLimiters({ budgets: { [hub.host]: BUDGET } });
  const factory = new RemoteClientFactory({ insecureHosts: [hub.host], limiters });
  let lowest = Number.POSITIVE_INFINITY;
  let pulls = 0;
  const stop = hub.onRequest((r) => {
    const left = hub.pullsRemaining();
    if (left !== undefined) lowest = Math.min(lowest, left);
    if (r.kind === "manifestGet") pulls++;
  });
  const started = Date.now();
  try {
    const repos = hub.content.repositories();
    const work = repos.flatMap((repo) => hub.content.tags(repo).map((tag) => ({ repo, tag })));
    assert.ok(work.length >= 140, `${work.length} tags`);
    const clients = new Map(
      repos.map((r) => [
        r,
        factory.clientFor(parseImageName(`${hub.host}/${r}`), Credentials.none()),
      ]),
    );
    for (const client of clients.values()) await client.tags();
    // Eight workers, as the warmer runs repositories side by side: HEAD, then the image.
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < work.length; i = next++) {
        const { repo, tag } = work[i] as { repo: string; tag: string };
        const client = clients.get(repo);
        assert.ok(client);
        const head = await client.head(tag);
        const entry = await client.manifest(tag);
        assert.ok(head !== undefined && "info" in entry, `${repo}:${tag}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    stop();
    await factory.close();
  }
  const seconds = (Date.now() - started) / 1000;
  const totals = hub.stats.totals;
  assert.ok(totals.total >= 300, `a few hundred requests: ${totals.total}`);
  assert.ok(pulls > QUOTA.limit, `more pulls (${pulls}) than one window's quota`);
  assert.equal(totals.throttled, 0, "no 429");
  // Any 10 s window holds at most the burst and ten seconds of the rate.
  const maxWindow = hub.stats.maxInWindow(10);
  assert.ok(
    maxWindow <= BUDGET.burst + 10 * BUDGET.rps,
    `max ${maxWindow} requests in a 10 s window (budget ${BUDGET.burst + 10 * BUDGET.rps})`,
  );
  assert.ok(lowest >= QUOTA.limit * 0.2, `ratelimit-remaining fell to ${lowest}`);
  // The budget was the bound, not idleness: the run took about as long as the budget says.
  assert.ok(seconds >= (totals.total - BUDGET.burst) / BUDGET.rps - 1, `${seconds} s`);
  t.diagnostic(
    `${totals.total} requests (${pulls} manifest GETs, ${totals.pulls} pulls) in ${seconds.toFixed(1)} s; max ${maxWindow} per 10 s of ${BUDGET.burst + 10 * BUDGET.rps}; lowest ratelimit-remaining ${lowest} of ${QUOTA.limit}`,
  );
  const state = limiters.state(hub.host);
  assert.equal(state.budget.source, "configured");
  assert.ok(state.pulls !== undefined && state.pulls.limit === QUOTA.limit);
});
