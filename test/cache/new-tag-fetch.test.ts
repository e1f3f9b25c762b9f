/**
 * Requests that cost what they must (issue 13): tags never seen are fetched with one GET by
 * tag when a repository's tags seldom share images, HEAD first when they often do or when a
 * GET spends a pull quota. The plan alone, then the Warmer against the real registry
 * (requests counted by the recording proxy) and against the simulator's Docker Hub.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { Registry as MetricsRegistry } from "prom-client";
import type { SimRegistry } from "../../bench/sim/registry-server.js";
import { Simulator } from "../../bench/sim/simulator.js";
import { Cache } from "../../src/cache/cache.js";
import {
  DOCKER_HUB_API_HOST,
  HostSharing,
  NewTagFetchPlan,
  SHARING_SAMPLE,
} from "../../src/cache/new-tag-fetch.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import { type ImageName, parseImageName } from "../../src/image/ref.js";
import type { ClientFactory } from "../../src/registry/client.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { ClientMetrics, instrumentClient } from "../../src/registry/instrument.js";
import { MirroredClientFactory } from "../../src/registry/mirrored-client-factory.js";
import { ImageBuilder, type PushedImage, type PushedIndex } from "../support/image-builder.js";
import { type RecordedRequest, type RegistryHandle, startRegistry } from "../support/registry.js";

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, "0")}`;

function plan(opts: {
  host?: string;
  repository?: string;
  quota?: boolean;
  index?: string[];
  history?: HostSharing;
}) {
  return new NewTagFetchPlan({
    host: opts.host ?? "registry.example",
    repository: opts.repository ?? "registry.example/team/new",
    pullQuota: () => opts.quota ?? false,
    indexDigests: () => opts.index ?? [],
    history: opts.history ?? new HostSharing(),
  });
}

describe("NewTagFetchPlan", () => {
  it("keeps HEAD first until enough is seen, then follows the repository's sharing", () => {
    const distinct = plan({});
    for (let i = 0; i < SHARING_SAMPLE; i++) {
      assert.equal(distinct.chooseHeadFirst(), true, `tag ${i}: too little seen`);
      distinct.observe(digest(i));
    }
    assert.equal(distinct.chooseHeadFirst(), false, "every image its own: one GET by tag");

    const shared = plan({});
    for (let i = 0; i < SHARING_SAMPLE; i++) shared.observe(digest(i % 4));
    assert.equal(shared.chooseHeadFirst(), true, "eight tags per image: HEAD first");
    assert.deepEqual([shared.headFirst, shared.getFirst], [1, 0]);
  });

  it("counts the index: HEAD first when more than half of the cached tags repeat an earlier one's image", () => {
    // Every image tagged twice: only the second tag of a pair can skip its GET, half of them.
    const pairs = Array.from({ length: 40 }, (_, i) => digest(Math.floor(i / 2)));
    assert.equal(plan({ index: pairs }).chooseHeadFirst(), false, "half is not more than half");
    assert.equal(plan({ index: [...pairs, digest(0)] }).chooseHeadFirst(), true, "one repeat more");
    const triples = Array.from({ length: 42 }, (_, i) => digest(Math.floor(i / 3)));
    assert.equal(plan({ index: triples }).chooseHeadFirst(), true, "two tags in three repeat");
    // 20 tags alone and 20 in pairs: a quarter repeat (every tag shares an image with another
    // in half of them, which is not what a HEAD saves).
    const mixed = Array.from({ length: 40 }, (_, i) => digest(i < 20 ? i : 100 + (i % 10)));
    assert.equal(plan({ index: mixed }).chooseHeadFirst(), false);
  });

  it("choices beyond the sample wait for it to resolve, then follow the repository's own tags", async () => {
    const signal = new AbortController().signal;
    const settled = (p: Promise<unknown>) =>
      Promise.race([p.then(() => true), new Promise((r) => setImmediate(() => r(false)))]);
    const cold = plan({});
    const first = [];
    for (let i = 0; i < SHARING_SAMPLE; i++) first.push(await cold.choose(signal));
    assert.ok(
      first.every((c) => c.headFirst),
      "nothing known: HEAD first",
    );
    const next = cold.choose(signal);
    assert.equal(await settled(next), false, "the 33rd waits for the sample");
    // A tag that fails resolves nothing, but its place in the sample is free again.
    first[0]?.end();
    const refill = await next;
    assert.equal(refill.headFirst, true, "still nothing known");
    const after = cold.choose(signal);
    for (const [i, c] of [...first.slice(1), refill].entries()) {
      c.observe(digest(i));
      c.end();
      c.observe(digest(1000 + i)); // ignored: a choice counts once
    }
    assert.equal((await after).headFirst, false, "32 distinct images: one GET by tag");
    assert.deepEqual([cold.headFirst, cold.getFirst], [SHARING_SAMPLE + 1, 1]);

    const stopped = new AbortController();
    const waiting = plan({});
    for (let i = 0; i < SHARING_SAMPLE; i++) await waiting.choose(stopped.signal);
    const cut = waiting.choose(stopped.signal);
    stopped.abort(new Error("scan stopped"));
    await assert.rejects(cut, /scan stopped/);

    const hub = plan({ host: DOCKER_HUB_API_HOST });
    for (let i = 0; i < 2 * SHARING_SAMPLE; i++) {
      assert.equal((await hub.choose(signal)).headFirst, true, "Docker Hub never waits");
    }
  });

  it("always HEAD first where a GET spends a pull quota", () => {
    const index = Array.from({ length: 100 }, (_, i) => digest(i));
    assert.equal(plan({ index }).chooseHeadFirst(), false);
    assert.equal(plan({ index, quota: true }).chooseHeadFirst(), true, "quota reported");
    assert.equal(plan({ index, host: DOCKER_HUB_API_HOST }).chooseHeadFirst(), true, "Docker Hub");
  });

  it("starts a small repository from its host's other repositories", () => {
    const history = new HostSharing();
    assert.equal(plan({ history }).chooseHeadFirst(), true, "nothing known of the host");
    const done = plan({ history, repository: "a" });
    for (let i = 0; i < 40; i++) done.observe(digest(i));
    done.finish();
    const next = plan({ history, repository: "b", index: [digest(1000)] });
    assert.equal(next.chooseHeadFirst(), false, "the host's repositories share nothing");
    assert.equal(plan({ history, host: "other.example" }).chooseHeadFirst(), true, "per host");
    assert.equal(plan({ history, repository: "a" }).chooseHeadFirst(), true, "not its own prior");

    const sharing = new HostSharing();
    const host = "registry.example";
    // A repository scanned again and again counts once, with its last counts.
    for (let i = 0; i < 10; i++)
      sharing.record({ host, repository: "quiet", tags: 40, repeats: 0 });
    sharing.record({ host, repository: "b", tags: 40, repeats: 40 });
    sharing.record({ host, repository: "c", tags: 40, repeats: 40 });
    assert.equal(plan({ history: sharing }).chooseHeadFirst(), true, "2 of 3 repositories share");
    // A huge repository counts as one sample, not as thousands of tags.
    sharing.record({ host, repository: "huge", tags: 100_000, repeats: 0 });
    assert.equal(plan({ history: sharing }).chooseHeadFirst(), false, "half is not more than half");
    sharing.record({ host, repository: "huge", tags: 100_000, repeats: 90_000 });
    assert.equal(
      plan({ history: sharing }).chooseHeadFirst(),
      true,
      "its last scan replaces the first",
    );
  });
});

describe("HostSharing", () => {
  it("its running totals agree with the repositories it holds, through records, adoptions and forgetting", () => {
    const repo = fc.integer({ min: 0, max: 12 }).map((i) => `r${i}`);
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("record" as const),
        repository: repo,
        tags: fc.integer({ min: 0, max: 200 }),
        repeats: fc.integer({ min: 0, max: 200 }),
      }),
      fc.record({
        kind: fc.constant("adopt" as const),
        entries: fc.array(
          fc.record({
            repository: repo,
            tags: fc.double({ min: -5, max: 80, noNaN: true }),
            repeats: fc.double({ min: -5, max: 80, noNaN: true }),
          }),
          { maxLength: 6 },
        ),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), repo, (ops, except) => {
        const sharing = new HostSharing();
        for (const o of ops) {
          if (o.kind === "record") {
            sharing.record({
              host: "h",
              repository: o.repository,
              tags: o.tags,
              repeats: Math.min(o.repeats, o.tags),
            });
          } else sharing.adopt("h", o.entries);
        }
        const held = sharing.entries("h");
        const others = held.filter((e) => e.repository !== except);
        const tags = others.reduce((n, e) => n + e.tags, 0);
        const repeats = others.reduce((n, e) => n + e.repeats, 0);
        const prior = sharing.prior("h", except);
        if (tags < SHARING_SAMPLE - 1e-9) assert.equal(prior, undefined);
        else if (tags >= SHARING_SAMPLE + 1e-9) {
          assert.ok(prior !== undefined && Math.abs(prior - repeats / tags) < 1e-9);
        }
        const all = held.reduce((n, e) => n + e.tags, 0);
        assert.equal(sharing.hasSeen("h", all - 1e-6), true);
        assert.equal(sharing.hasSeen("h", all + 1e-6), false);
      }),
      { numRuns: 300 },
    );
  });
});

function count(requests: RecordedRequest[]) {
  const c = { tagLists: 0, heads: 0, manifestGets: 0, blobGets: 0, other: 0 };
  for (const r of requests) {
    if (r.method === "GET" && r.path.endsWith("/tags/list")) c.tagLists++;
    else if (r.method === "HEAD" && r.path.includes("/manifests/")) c.heads++;
    else if (r.method === "GET" && r.path.includes("/manifests/")) c.manifestGets++;
    else if (r.method === "GET" && r.path.includes("/blobs/")) c.blobGets++;
    else c.other++;
  }
  return c;
}

describe("Warmer: the cost of tags never seen, on the real registry", () => {
  const N = 80;
  // More than a sample: the tags beyond it are started with it and wait for it.
  const BURST = 48;
  let registry: RegistryHandle;
  let builder: ImageBuilder;
  let distinctRepo: ImageName;
  let sharedRepo: ImageName;
  const images: PushedImage[] = [];
  let multi: PushedIndex;

  before(async () => {
    registry = await startRegistry();
    builder = new ImageBuilder(registry);
    distinctRepo = parseImageName(`${registry.host}/fetch/distinct`);
    sharedRepo = parseImageName(`${registry.host}/fetch/shared`);
    // Eight pushes at a time: the registry waits on its disk, one at a time took most of a second.
    const pushed = new Array<PushedImage>(N);
    let next = 0;
    const pusher = async () => {
      for (let i = next++; i < N; i = next++) {
        pushed[i] = await builder.pushImage("fetch/distinct", `d${String(i).padStart(3, "0")}`, {
          seed: `distinct-${i}`,
          format: i % 2 ? "oci" : "docker",
          labels: { n: String(i) },
        });
      }
    };
    const sharedRepoPushed = (async () => {
      const shared = await Promise.all(
        [0, 1, 2, 3].map((i) =>
          builder.pushImage("fetch/shared", undefined, { seed: `shared-${i}` }),
        ),
      );
      await Promise.all(
        shared.map((manifest, i) =>
          builder.tagMany("fetch/shared", {
            tags: Array.from({ length: N / 4 }, (_, j) => `s${String(j * 4 + i).padStart(3, "0")}`),
            manifest,
          }),
        ),
      );
    })();
    await Promise.all([...Array.from({ length: 8 }, pusher), sharedRepoPushed]);
    images.push(...pushed);
    // Listed last, so fetched after the sample: an index by tag is GET index, platform, config.
    multi = await builder.pushIndex("fetch/distinct", "x-multi", { seed: "distinct-index" });
  });

  after(async () => {
    await builder?.close();
    await registry?.stop();
  });

  const setup = () => {
    const store = new MemoryStore();
    const factory = new RemoteClientFactory({
      insecureHosts: [registry.host],
      limiters: { rps: 100_000, burst: 1000 },
    });
    const metricsRegistry = new MetricsRegistry();
    const warmer = new Warmer({ store, factory, burst: BURST, metricsRegistry });
    const cache = new Cache({ store, metricsRegistry });
    return { store, factory, warmer, cache, metricsRegistry };
  };

  it("a cold scan of tags over distinct images costs two requests per tag, plus the sample", async (t) => {
    const { factory, warmer, cache, metricsRegistry } = setup();
    try {
      registry.resetRequests();
      const [r] = await warmer.scan([{ name: distinctRepo }]);
      assert.equal(r?.outcome, "scanned");
      assert.equal(r?.refreshed, N + 1);
      assert.equal(r?.errors, 0);
      const c = count(registry.requests());
      const tags = N + 1;
      // Every image (and the index's platform manifest) is fetched exactly once.
      assert.equal(c.manifestGets, N + 2, JSON.stringify(c));
      assert.equal(c.blobGets, N + 1, JSON.stringify(c));
      // HEAD first only while the sample is taken: the tags beyond it wait for it.
      assert.equal(c.heads, SHARING_SAMPLE, JSON.stringify(c));
      const total = c.tagLists + c.heads + c.manifestGets + c.blobGets + c.other;
      t.diagnostic(
        `cold, ${tags} tags over distinct images: ${total} requests ${JSON.stringify(c)}`,
      );
      assert.ok(
        // Besides: the listing, the ping and the index's platform manifest.
        total <= 2 * tags + 3 + SHARING_SAMPLE,
        `${total} requests: ${JSON.stringify(c)}`,
      );
      assert.equal(r?.fetchedByTag, tags - c.heads);
      assert.equal(r?.fetchedByTag, tags - SHARING_SAMPLE);
      const metrics = await metricsRegistry.getSingleMetricAsString(
        "regscan_warmer_new_tag_fetches_total",
      );
      assert.match(metrics, new RegExp(`first="get"\\} ${r?.fetchedByTag}\\b`));

      // What was cached by one GET is what was pushed: digest and labels.
      const md = await cache.getImageRepositoryMetadata(distinctRepo);
      assert.equal(md.images.size, tags);
      for (const [i, image] of images.entries()) {
        const info = md.images.get(`d${String(i).padStart(3, "0")}`);
        assert.equal(info?.digest, image.digest);
        assert.equal(info?.labels.n, String(i));
      }
      const index = md.images.get("x-multi");
      assert.equal(index?.digest, multi.digest);
      assert.equal(index?.platforms.length, multi.images.length);

      // New tags on images already cached: one GET by tag each, nothing more.
      await builder.tag("fetch/distinct", "y-alias-1", images[1] as PushedImage);
      await builder.tag("fetch/distinct", "y-alias-2", images[2] as PushedImage);
      await builder.tag("fetch/distinct", "y-alias-3", multi);
      registry.resetRequests();
      const [again] = await warmer.scan([{ name: distinctRepo }]);
      assert.deepEqual(again?.newTags.sort(), ["y-alias-1", "y-alias-2", "y-alias-3"]);
      assert.equal(again?.fetchedByTag, 3);
      const c2 = count(registry.requests());
      assert.deepEqual(
        [c2.tagLists, c2.heads, c2.manifestGets, c2.blobGets],
        [1, 0, 3, 0],
        JSON.stringify(c2),
      );
      assert.equal(
        (await cache.getImage(distinctRepo.withTag("y-alias-2"))).digest,
        images[2]?.digest,
      );
      assert.equal((await cache.getImage(distinctRepo.withTag("y-alias-3"))).digest, multi.digest);

      // The digest a GET by tag names is checked against the bytes: a lie is the tag's error.
      const [named, sent] = [images[5], images[6]] as [PushedImage, PushedImage];
      await builder.tag("fetch/distinct", "z-lie", named);
      registry.setFault((req) =>
        req.method === "GET" && req.path === "/v2/fetch/distinct/manifests/z-lie"
          ? {
              status: 200,
              headers: { "content-type": sent.mediaType, "docker-content-digest": named.digest },
              body: sent.manifest,
            }
          : undefined,
      );
      try {
        const [lied] = await warmer.scan([{ name: distinctRepo }]);
        assert.equal(lied?.errors, 1);
        assert.equal(lied?.error?.code, "DIGEST_MISMATCH");
      } finally {
        registry.setFault(undefined);
      }
      await assert.rejects(cache.getImage(distinctRepo.withTag("z-lie")), {
        lastErrorCode: "DIGEST_MISMATCH",
      });
    } finally {
      await factory.close();
    }
  });

  it("goes through instrumented clients and a mirror that has nothing: one GET by tag, the origin's names", async () => {
    const mirror = await startRegistry();
    const remote = new RemoteClientFactory({
      insecureHosts: [registry.host, mirror.host],
      limiters: { rps: 100_000, burst: 1000 },
    });
    const metricsRegistry = new MetricsRegistry();
    const clientMetrics = new ClientMetrics(metricsRegistry);
    // As the daemon wires them: instrumented clients, the mirror in front.
    const instrumented: ClientFactory = {
      clientFor: (n, c, o) => instrumentClient(remote.clientFor(n, c, o), clientMetrics),
      succeed: (n) => remote.succeed(n),
      hostConditions: (n) => remote.hostConditions(n),
    };
    const factory = new MirroredClientFactory(instrumented, { [registry.host]: [mirror.host] });
    const store = new MemoryStore();
    const warmer = new Warmer({ store, factory, burst: BURST, metricsRegistry });
    try {
      registry.resetRequests();
      const [r] = await warmer.scan([{ name: distinctRepo }]);
      assert.equal(r?.outcome, "scanned");
      assert.equal(r?.errors, 0);
      assert.ok((r?.fetchedByTag ?? 0) > 0, "GET by tag through both wrappers");
      const c = count(registry.requests());
      assert.equal(c.heads + (r?.fetchedByTag ?? 0), r?.tags, JSON.stringify(c));
      assert.ok(
        mirror.requests().some((q) => q.method === "GET" && q.path.includes("/manifests/")),
        "the mirror was asked first",
      );
      const cache = new Cache({ store, metricsRegistry });
      const info = await cache.getImage(distinctRepo.withTag("d070"));
      assert.equal(info.ref.toString(), distinctRepo.withTag("d070").toString());
      assert.equal(info.digest, images[70]?.digest);
      const timed = await metricsRegistry.getSingleMetricAsString(
        "regscan_client_fetch_duration_seconds",
      );
      assert.match(timed, /_count\{kind="metadata",success="true"\} [1-9]/);
    } finally {
      await remote.close();
      await mirror.stop();
    }
  });

  it("a cold scan of tags over few images keeps HEAD first: one GET per image", async () => {
    const { factory, warmer, cache } = setup();
    try {
      registry.resetRequests();
      const [r] = await warmer.scan([{ name: sharedRepo }]);
      assert.equal(r?.refreshed, N);
      assert.equal(r?.fetchedByTag, undefined);
      const c = count(registry.requests());
      assert.deepEqual(
        [c.tagLists, c.heads, c.manifestGets, c.blobGets],
        [1, N, 4, 4],
        JSON.stringify(c),
      );
      assert.equal((await cache.getImageRepositoryMetadata(sharedRepo)).images.size, N);
    } finally {
      await factory.close();
    }
  });
});

describe("Warmer: the cost of tags never seen, on a simulated Docker Hub", () => {
  let sim: Simulator;
  let hub: SimRegistry;
  let dist: SimRegistry;
  const fleet = { seed: "fetch", repositories: 30, tags: 3000 };
  // 367 tags over 366 images (`latest` shares one).
  const REPO = "org-19/app-19";

  before(async () => {
    sim = await Simulator.start({
      registries: [
        {
          name: "hub",
          personality: "dockerhub",
          fleet,
          pullQuota: { limit: 100_000, windowSeconds: 3600 },
        },
        { name: "dist", personality: "distribution3", fleet },
      ],
    });
    hub = sim.registry("hub");
    dist = sim.registry("dist");
  });

  after(async () => {
    await sim?.stop();
  });

  async function scan(reg: SimRegistry) {
    const kinds = new Map<string, number>();
    const stop = reg.onRequest((r) => kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1));
    const factory = new RemoteClientFactory({
      insecureHosts: [reg.host],
      limiters: { rps: 100_000, burst: 1000 },
    });
    const warmer = new Warmer({
      store: new MemoryStore(),
      factory,
      burst: 8,
      metricsRegistry: new MetricsRegistry(),
    });
    try {
      const [r] = await warmer.scan([{ name: parseImageName(`${reg.host}/${REPO}`) }]);
      return { r, kinds };
    } finally {
      stop();
      await factory.close();
    }
  }

  it("GETs spend Docker Hub's pull quota: every new tag goes HEAD first there, not elsewhere", async (t) => {
    const truth = hub.content.truth(REPO);
    const distinct = new Set(truth.map((t) => t.digest)).size;
    assert.ok(distinct >= truth.length - 1, "tags over distinct images");

    const onHub = await scan(hub);
    assert.equal(onHub.r?.outcome, "scanned");
    assert.equal(onHub.r?.refreshed, truth.length);
    assert.equal(onHub.r?.fetchedByTag, undefined, "no GET by tag on Docker Hub");
    assert.equal(onHub.kinds.get("manifestHead"), truth.length);

    const elsewhere = await scan(dist);
    assert.equal(elsewhere.r?.refreshed, truth.length);
    const heads = elsewhere.kinds.get("manifestHead") ?? 0;
    assert.ok(heads <= SHARING_SAMPLE + 8, `${heads} HEADs`);
    // The same content costs fewer pulls on the quota's side only by HEADs, never more GETs.
    t.diagnostic(
      `hub ${JSON.stringify([...onHub.kinds])}, elsewhere ${JSON.stringify([...elsewhere.kinds])}`,
    );
    const hubGets = onHub.kinds.get("manifestGet") ?? 0;
    const distGets = elsewhere.kinds.get("manifestGet") ?? 0;
    assert.ok(hubGets <= distGets, `${hubGets} manifest GETs on the hub, ${distGets} elsewhere`);
  });
});
