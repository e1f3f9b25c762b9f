/**
 * Two `regscan serve` replicas on one Redis share each registry's request budget: each
 * reports two live replicas and half of the host's budget in its metrics, and when one
 * stops the other takes the whole budget back.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ImageBuilder } from "../support/image-builder.js";
import { cleanupAll, waitFor } from "../support/processes.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import { type ServeProcess, startServe } from "./serve-process.js";

after(cleanupAll);

/** A sample of `/metrics` (`name{labels} value`), or undefined when absent. */
function sample(text: string, name: string, labels = ""): number | undefined {
  const escaped = `${name}${labels}`.replace(/[{}.*+?^$()|[\]\\]/g, "\\$&");
  const m = new RegExp(`^${escaped} ([0-9.e+-]+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

describe("replicas share the registry budgets", () => {
  let registry: RegistryHandle;
  let redis: RedisServer;

  before(async () => {
    [registry, redis] = await Promise.all([startRegistry(), startRedis()]);
    const builder = new ImageBuilder(registry);
    await builder.pushImage("shared/budget", ["v1"]);
    await builder.close();
  });
  after(async () => {
    await redis?.stop();
  });

  test("two replicas take half each; the survivor takes the whole back", async () => {
    const args = (id: string) => [
      "--image",
      `${registry.host}/shared/budget`,
      "--insecure-host",
      registry.host,
      "--registry-budget",
      `${registry.host}=20/10`,
      "--cache",
      redis.url,
      "--replica-id",
      id,
    ];
    const replicas: ServeProcess[] = await Promise.all([
      startServe(args("budget-a")),
      startServe(args("budget-b")),
    ]);
    const host = `{host="${registry.host}"}`;
    const metricsOf = async (r: ServeProcess) => (await fetch(`${r.url}/metrics`)).text();
    try {
      for (const r of replicas) {
        await waitFor(
          async () => {
            const text = await metricsOf(r);
            return (
              sample(text, "regscan_replicas_live") === 2 &&
              sample(text, "regscan_registry_budget_share") === 0.5
            );
          },
          { what: `two replicas at half in ${r.url}/metrics`, timeoutMs: 30_000, intervalMs: 200 },
        );
      }
      // The host's gauges appear on a replica once it has sent the host a request: one of
      // them has scanned the repository.
      await waitFor(
        async () =>
          (await Promise.all(replicas.map(metricsOf))).some(
            (text) => sample(text, "regscan_registry_effective_budget_rps", host) !== undefined,
          ),
        { what: "a replica that scanned", timeoutMs: 30_000, intervalMs: 200 },
      );
      // Each host's budget is divided by demand: while the scan's requests are under 5 s old
      // the replica that made them has a little more of the host; then neither asks more
      // than the other, and each has half.
      const halves = async () => {
        for (const text of await Promise.all(replicas.map(metricsOf))) {
          if (sample(text, "regscan_registry_budget_rps", host) === undefined) continue;
          assert.equal(sample(text, "regscan_registry_budget_rps", host), 20);
          assert.ok(
            Math.abs((sample(text, "regscan_registry_effective_budget_rps", host) ?? 0) - 9.9) <
              1e-6,
            "half of 20 less the 1% margin",
          );
          assert.equal(sample(text, "regscan_registry_effective_budget_burst", host), 5);
          assert.equal(sample(text, "regscan_registry_host_budget_share", host), 0.5);
        }
      };
      await waitFor(() => halves().then(() => true), {
        what: "half of the host's budget each once the scan is over",
        timeoutMs: 20_000,
        intervalMs: 250,
      });
      const [a, b] = replicas as [ServeProcess, ServeProcess];
      assert.equal((await a.stop()).code, 0, a.output());
      // A clean stop writes the replica out: the other sees it at its next heartbeat.
      await waitFor(
        async () => {
          const text = await metricsOf(b);
          return (
            sample(text, "regscan_replicas_live") === 1 &&
            sample(text, "regscan_registry_budget_share") === 1
          );
        },
        { what: "the survivor alone with the whole budget", timeoutMs: 15_000, intervalMs: 200 },
      );
      assert.match(b.output(), /replica census: 1 live replica\(s\)/);
    } finally {
      for (const r of replicas) await r.stop();
    }
  });
});
