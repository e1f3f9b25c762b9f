/**
 * Two `regscan serve` replicas on one shared store (issue 5, acceptance 3): they split the
 * repositories between them (each repository listed once per interval in total, both doing
 * some of the work) and both answer for all of them, the second with the answers the first
 * built and shared through the store.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ImageBuilder } from "../support/image-builder.js";
import { startMemcached } from "../support/memcached.js";
import { cleanupAll, waitFor } from "../support/processes.js";
import { startRedis } from "../support/redis.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import { type ServeProcess, startServe } from "./serve-process.js";

after(cleanupAll);

const REPOS = Array.from({ length: 12 }, (_, i) => `shared/repo${String(i).padStart(2, "0")}`);
/**
 * Repositories of one registry host a replica scans at once (all of REPOS are on one host).
 * Set explicitly rather than left to the default, since the gate below counts on it.
 */
const PER_HOST = 4;
/** Listings held at once before the gate opens: more than one replica can have in flight. */
const GATE = PER_HOST + 1;
// The first replica holds at most PER_HOST leases at the gate: the rest are left for the other.
assert.ok(REPOS.length > PER_HOST, "enough repositories for both replicas");

function scannedCount(metrics: string): number {
  const m = /regscan_warmer_repositories_scanned_total\{result="ok"\} (\d+)/.exec(metrics);
  return m ? Number(m[1]) : 0;
}

/**
 * Holds every tag listing until GATE are waiting. One warmer has at most PER_HOST of this
 * host's repositories in flight, so GATE waiting means both replicas are scanning: neither
 * can do all the work before the other has started, however the two processes' startups
 * happen to line up (the test starts the second only once the first is up, the worst case;
 * the second also waits about a heartbeat for its share of the registry budget).
 */
function gateListings(registry: RegistryHandle): { openedByCount: () => boolean } {
  let waiting = 0;
  let openedByCount = false;
  let open: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const bound = new Promise<void>((resolve) => setTimeout(resolve, 20_000).unref());
  registry.setFault(async (req) => {
    if (!req.path.endsWith("/tags/list")) return undefined;
    waiting++;
    if (waiting >= GATE) {
      openedByCount = true;
      open();
    }
    await Promise.race([gate, bound]);
    return { delayMs: 50 };
  });
  return { openedByCount: () => openedByCount };
}

/** `regscan_api_repository_answers_total` by source. */
function answerSources(metrics: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(
    /regscan_api_repository_answers_total\{source="(\w+)"\} (\d+)/g,
  )) {
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

async function checkReplicas(registry: RegistryHandle, cacheUrl: string): Promise<void> {
  registry.resetRequests();
  const gate = gateListings(registry);
  const names = REPOS.map((r) => `${registry.host}/${r}`);
  const args = (id: string) => [
    ...names.flatMap((n) => ["--image", n]),
    "--insecure-host",
    registry.host,
    "--cache",
    cacheUrl,
    "--replica-id",
    id,
    "--concurrency",
    String(2 * PER_HOST),
    "--per-host-concurrency",
    String(PER_HOST),
  ];
  // One after the other: the first may scan before the second exists, which the gate covers.
  const replicas: ServeProcess[] = [await startServe(args("replica-a"))];
  replicas.push(await startServe(args("replica-b")));
  try {
    for (const replica of replicas) {
      for (const name of names) {
        await waitFor(
          async () => (await replica.fetchJson(`/v1/repositories/${name}`)).status === 200,
          {
            what: `${name} from ${replica.url}`,
            timeoutMs: 40_000,
            intervalMs: 200,
          },
        );
      }
    }
    for (const replica of replicas) {
      const repo = await replica.fetchJson(`/v1/repositories/${names[0]}`);
      assert.deepEqual(repo.body.tags, ["v1"]);
    }
    // The second replica read every repository after the first had built its answer: it
    // served the first one's, shared through the store, byte for byte.
    const answers = answerSources(await (await fetch(`${replicas[1]!.url}/metrics`)).text());
    assert.ok(
      (answers.stored ?? 0) >= REPOS.length - 2,
      `replica-b's answers by source: ${JSON.stringify(answers)}`,
    );
    for (const name of names) {
      const [a, b] = await Promise.all(
        replicas.map(async (r) => (await fetch(`${r.url}/v1/repositories/${name}`)).text()),
      );
      assert.equal(b, a, `${name}: the same bytes from both replicas`);
    }
    const counts = await Promise.all(
      replicas.map(async (r) => scannedCount(await (await fetch(`${r.url}/metrics`)).text())),
    );
    assert.equal(counts[0]! + counts[1]!, REPOS.length, `scans per replica: ${counts.join(", ")}`);
    assert.ok(counts[0]! > 0 && counts[1]! > 0, `both replicas scanned some: ${counts.join(", ")}`);
    // Not let through by its time bound: both replicas had listings waiting at once.
    assert.ok(gate.openedByCount(), `${GATE} listings waited at the gate together`);
    for (const repo of REPOS) {
      const listings = registry
        .requests()
        .filter((r) => r.method === "GET" && r.path === `/v2/${repo}/tags/list`);
      assert.equal(listings.length, 1, `${repo} listed once between the replicas`);
    }
  } finally {
    for (const r of replicas) assert.equal((await r.stop()).code, 0, r.output());
  }
}

// The two stores' tests run side by side, each with a registry of its own: the gate and the
// request counts are per registry, and the replicas mostly wait (on the gate, on heartbeats).
describe("replicas on a shared store", { concurrency: true }, () => {
  const registries: RegistryHandle[] = [];

  before(async () => {
    registries.push(
      ...(await Promise.all(
        [0, 1].map(async () => {
          const registry = await startRegistry();
          const builder = new ImageBuilder(registry);
          for (const repo of REPOS) await builder.pushImage(repo, ["v1"]);
          await builder.close();
          return registry;
        }),
      )),
    );
  });

  test("on one Redis", async () => {
    const redis = await startRedis();
    await checkReplicas(registries[0]!, redis.url);
    await redis.stop();
  });

  test("on one memcached", async () => {
    const memcached = await startMemcached();
    await checkReplicas(registries[1]!, `memcached://${memcached.address}`);
    await memcached.stop();
  });
});
