/**
 * A tag-list page size the registry refuses (issue 13) is asked again at the size the refusal
 * implies and remembered for the host, by every client of the factory: Quay's
 * TOO_MANY_TAGS_REQUESTED (413, or 400 from some versions) -> n=100, ECR's 405 for n above
 * 1,000 -> n=1000. Against single registries of the fleet simulator (bench/sim) with the
 * personality's own answers; a 2,500-tag repository is paged 25 times at n=100. The 25,000-tag
 * listing on every personality, the same refusals included, is the scale tier's
 * test/sim/client-personalities.scale-test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { RegistryContent } from "../../bench/sim/content.js";
import { PERSONALITIES, type Personality } from "../../bench/sim/personalities.js";
import { SimRegistry } from "../../bench/sim/registry-server.js";
import { TokenIssuer } from "../../bench/sim/tokens.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";

const TAGS = 2_500;
const REPO = "huge/repo-0";

/** A simulated registry with one {@link TAGS}-tag repository, closed when `fn` ends. */
async function withRegistry(
  name: string,
  personality: Personality,
  fn: (registry: SimRegistry) => Promise<void>,
): Promise<void> {
  const registry = new SimRegistry({
    name,
    personality,
    content: new RegistryContent({ seed: name, repositories: 1, tags: 10, huge: [TAGS] }),
    tokens: new TokenIssuer(300),
  });
  await registry.listen(0);
  try {
    await fn(registry);
  } finally {
    await registry.close();
  }
}

/** The tag list of {@link REPO} by a new client of `factory`, and the requests it made: `STATUS PATH?QUERY`. */
async function listTags(
  factory: RemoteClientFactory,
  registry: SimRegistry,
): Promise<{ tags: string[]; requests: string[] }> {
  const requests: string[] = [];
  const stop = registry.onRequest((r) => {
    if (r.kind === "tags") requests.push(`${r.status} ${r.url}`);
  });
  try {
    const client = factory.clientFor(
      parseImageName(`${registry.host}/${REPO}`),
      Credentials.none(),
    );
    return { tags: await client.tags(), requests };
  } finally {
    stop();
  }
}

function assertExact(tags: string[], registry: SimRegistry): void {
  const truth = registry.content.tags(REPO, registry.personality.order);
  assert.equal(truth.length, TAGS);
  assert.deepEqual(tags, truth, "the ground truth, in the registry's order");
}

test("Quay's 413 TOO_MANY_TAGS_REQUESTED: the page is asked again with n=100 and the cap is remembered for the host", async () => {
  await withRegistry("quay", PERSONALITIES.quay, async (registry) => {
    const factory = new RemoteClientFactory({ insecureHosts: [registry.host] });
    try {
      const path = `/v2/${REPO}/tags/list?`;
      const first = await listTags(factory, registry);
      assertExact(first.tags, registry);
      assert.deepEqual(first.requests.slice(0, 2), [`413 ${path}n=1000`, `200 ${path}n=100`]);
      assert.equal(first.requests.length, 1 + TAGS / 100);
      assert.deepEqual(
        first.requests.filter((r) => !r.startsWith("200 ")),
        [`413 ${path}n=1000`],
      );
      // Another client of the same factory starts at n=100: no second refusal.
      const second = await listTags(factory, registry);
      assertExact(second.tags, registry);
      assert.equal(second.requests[0], `200 ${path}n=100`);
      assert.equal(second.requests.length, TAGS / 100);
    } finally {
      await factory.close();
    }
  });
});

test("a Quay that answers 400 instead of 413 is understood the same way", async () => {
  const personality: Personality = {
    ...PERSONALITIES.quay,
    oversize: { status: 400, code: "TOO_MANY_TAGS_REQUESTED", message: "too many tags" },
  };
  await withRegistry("quay400", personality, async (registry) => {
    const factory = new RemoteClientFactory({ insecureHosts: [registry.host] });
    try {
      const { tags, requests } = await listTags(factory, registry);
      assertExact(tags, registry);
      assert.equal(requests[0], `400 /v2/${REPO}/tags/list?n=1000`);
      assert.equal(requests.length, 1 + TAGS / 100);
    } finally {
      await factory.close();
    }
  });
});

test("ECR's 405 for n above 1,000 is asked again with n=1000 (a tagPageSize of 5,000)", async () => {
  await withRegistry("ecr", PERSONALITIES.ecr, async (registry) => {
    const factory = new RemoteClientFactory({
      insecureHosts: [registry.host],
      tagPageSize: 5000,
    });
    try {
      const path = `/v2/${REPO}/tags/list?`;
      const first = await listTags(factory, registry);
      assertExact(first.tags, registry);
      assert.deepEqual(first.requests.slice(0, 2), [`405 ${path}n=5000`, `200 ${path}n=1000`]);
      assert.equal(first.requests.length, 1 + Math.ceil(TAGS / 1000));
      // Remembered: the next client asks for 1,000 from the start.
      const second = await listTags(factory, registry);
      assertExact(second.tags, registry);
      assert.equal(second.requests[0], `200 ${path}n=1000`);
      assert.equal(second.requests.length, Math.ceil(TAGS / 1000));
    } finally {
      await factory.close();
    }
  });
});
