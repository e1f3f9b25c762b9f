/**
 * regscan against every personality of the registry-fleet simulator (issue 13, acceptance
 * 3): `regscan tags` (the CLI, in process) and the client's `tags()` list a 25,000-tag
 * repository exactly as the simulator's ground truth, in the registry's order, with no
 * truncation and no duplicates; Quay's refused page size is asked again and remembered.
 * The scale tier (`npm run test:scale`): the refusals alone, on smaller repositories and Quay's
 * 400 variant, are test/registry/tag-page-caps.test.ts in `npm test`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { hugeRepository } from "../../bench/sim/check-client.js";
import { everyPersonality } from "../../bench/sim/fleets.js";
import { PERSONALITY_NAMES } from "../../bench/sim/personalities.js";
import type { SimRegistry } from "../../bench/sim/registry-server.js";
import { Simulator } from "../../bench/sim/simulator.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { runCliInProcess } from "../support/cli.js";

const HUGE = 25_000;
let sim: Simulator;

before(async () => {
  sim = await Simulator.start({
    registries: everyPersonality({ seed: "client-test", huge: [HUGE], repositories: 2, tags: 20 }),
  });
});

after(async () => {
  await sim?.stop();
});

/** The tag-list requests `registry` answers while `fn` runs: `STATUS PATH?QUERY`. */
async function tagRequests<T>(
  registry: SimRegistry,
  fn: () => Promise<T>,
): Promise<{ value: T; requests: string[] }> {
  const requests: string[] = [];
  const stop = registry.onRequest((r) => {
    if (r.kind === "tags") requests.push(`${r.status} ${r.url}`);
  });
  try {
    return { value: await fn(), requests };
  } finally {
    stop();
  }
}

function assertExact(listed: string[], registry: SimRegistry, repo: string, what: string): void {
  const truth = registry.content.tags(repo, registry.personality.order);
  assert.equal(truth.length, HUGE);
  assert.equal(listed.length, HUGE, `${what}: no truncation`);
  assert.equal(new Set(listed).size, HUGE, `${what}: no duplicates`);
  assert.deepEqual(listed, truth, `${what}: the ground truth, in the registry's order`);
}

describe("a 25,000-tag repository is listed exactly on every personality", () => {
  for (const name of PERSONALITY_NAMES) {
    test(`${name}: regscan tags and the client's tags()`, async () => {
      const registry = sim.registry(name);
      const repo = hugeRepository(registry);
      const cli = await runCliInProcess([
        "tags",
        `${registry.host}/${repo}`,
        "--insecure-host",
        registry.host,
        "--output",
        "json",
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      const json = JSON.parse(cli.stdout) as { name: string; tags: string[] };
      assert.equal(json.name, `${registry.host}/${repo}`);
      assertExact(json.tags, registry, repo, "regscan tags");

      const factory = new RemoteClientFactory({ insecureHosts: [registry.host] });
      try {
        const image = parseImageName(`${registry.host}/${repo}`);
        const client = factory.clientFor(image, Credentials.none());
        const { value, requests } = await tagRequests(registry, () => client.tags());
        assertExact(value, registry, repo, "tags()");
        // Every page is this repository's own, and only Quay's first (n=1000) is refused.
        const path = `/v2/${repo}/tags/list?`;
        for (const r of requests) assert.ok(r.slice(4).startsWith(path), r);
        const refused = name === "quay" ? [`413 ${path}n=1000`] : [];
        assert.deepEqual(
          requests.filter((r) => !r.startsWith("200 ")),
          refused,
        );
      } finally {
        await factory.close();
      }
    });
  }
});

describe("Quay's TOO_MANY_TAGS_REQUESTED", () => {
  test("the page is asked again with n=100 and the cap is remembered for the host", async () => {
    const registry = sim.registry("quay");
    const repo = hugeRepository(registry);
    const factory = new RemoteClientFactory({ insecureHosts: [registry.host] });
    try {
      const image = parseImageName(`${registry.host}/${repo}`);
      const first = await tagRequests(registry, () =>
        factory.clientFor(image, Credentials.none()).tags(),
      );
      assert.deepEqual(first.requests.slice(0, 2), [
        `413 /v2/${repo}/tags/list?n=1000`,
        `200 /v2/${repo}/tags/list?n=100`,
      ]);
      assert.equal(first.requests.length, 1 + HUGE / 100);
      // Another client of the same factory starts at n=100: no second refusal.
      const second = await tagRequests(registry, () =>
        factory.clientFor(image, Credentials.none()).tags(),
      );
      assert.equal(second.requests[0], `200 /v2/${repo}/tags/list?n=100`);
      assert.equal(second.requests.length, HUGE / 100);
      assertExact(second.value, registry, repo, "second listing");
    } finally {
      await factory.close();
    }
  });
});

test("ECR's 405 for n above 1,000 is asked again with n=1000 (a tagPageSize of 5,000)", async () => {
  const registry = sim.registry("ecr");
  const repo = hugeRepository(registry);
  const factory = new RemoteClientFactory({ insecureHosts: [registry.host], tagPageSize: 5000 });
  try {
    const { value, requests } = await tagRequests(registry, () =>
      factory.clientFor(parseImageName(`${registry.host}/${repo}`), Credentials.none()).tags(),
    );
    assertExact(value, registry, repo, "tags()");
    assert.deepEqual(requests.slice(0, 2), [
      `405 /v2/${repo}/tags/list?n=5000`,
      `200 /v2/${repo}/tags/list?n=1000`,
    ]);
    assert.equal(requests.length, 1 + HUGE / 1000);
  } finally {
    await factory.close();
  }
});
