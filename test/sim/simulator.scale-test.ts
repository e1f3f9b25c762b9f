/**
 * The registry-fleet simulator (bench/sim): every personality's listing of a 25,000-tag
 * repository, followed as a client would, equals the ground truth; digests verify; Docker
 * Hub's quota headers; Quay's and ECR's errors for a large `n`; tokens, faults, counts,
 * churn and webhooks; and regscan's own client against the personalities it lists right.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { after, before, describe, test } from "node:test";
import { checkRegscanClient, hugeRepository } from "../../bench/sim/check-client.js";
import { RegistryContent } from "../../bench/sim/content.js";
import { everyPersonality } from "../../bench/sim/fleets.js";
import { PERSONALITY_NAMES, type PersonalityName } from "../../bench/sim/personalities.js";
import type { SimRegistry } from "../../bench/sim/registry-server.js";
import { Simulator } from "../../bench/sim/simulator.js";
import { waitFor } from "../support/wait-for.js";
import { parseChallenge, SimReader, sha256 } from "./sim-client.js";

const HUGE = 25_000;
let sim: Simulator;
const readers = new Map<string, SimReader>();

before(async () => {
  sim = await Simulator.start({
    registries: everyPersonality({ seed: "sim-test", huge: [HUGE], repositories: 30, tags: 600 }),
    controlPort: 0,
  });
  for (const r of sim.registries) readers.set(r.name, new SimReader(r.url));
});

after(async () => {
  await Promise.all([...readers.values()].map((r) => r.close()));
  await sim?.stop();
});

function reg(name: PersonalityName): { registry: SimRegistry; reader: SimReader } {
  return { registry: sim.registry(name), reader: readers.get(name) as SimReader };
}

/** The first request and the page size each personality's listing is read with. */
const LISTING: Record<PersonalityName, { query: string; pageSize: number }> = {
  distribution2: { query: "?n=100", pageSize: HUGE },
  distribution3: { query: "", pageSize: 100 },
  ghcr: { query: "", pageSize: 100 },
  quay: { query: "?n=100", pageSize: 100 },
  ecr: { query: "?n=1000", pageSize: 1000 },
  acr: { query: "?n=5000", pageSize: 1000 },
  artifactory: { query: "?n=1000", pageSize: 1000 },
  nexus: { query: "?n=1000", pageSize: 1000 },
  harbor110: { query: "", pageSize: HUGE },
  dockerhub: { query: "", pageSize: 100 },
};

describe("a 25,000-tag listing, followed as a client would, equals the ground truth", () => {
  for (const name of PERSONALITY_NAMES) {
    test(name, async () => {
      const { registry, reader } = reg(name);
      const repo = hugeRepository(registry);
      const port = String(registry.port);
      const fix = (link: string): string => {
        if (name === "nexus") {
          // Nexus drops the port: the link names the host alone.
          const u = new URL(link);
          assert.equal(u.port, "", `nexus link keeps no port: ${link}`);
          assert.equal(u.hostname, "127.0.0.1");
          u.port = port;
          return u.href;
        }
        if (name === "artifactory") {
          // Artifactory drops the virtual repository: /v2/huge/repo-0/... for virtual/huge/repo-0.
          assert.match(link, /^\/v2\/huge\/repo-0\/tags\/list\?/, link);
          return link.replace("/v2/", "/v2/virtual/");
        }
        if (name === "quay") {
          assert.match(
            link,
            new RegExp(`^http://127\\.0\\.0\\.1:${port}/v2/${repo}/tags/list\\?n=100&next_page=`),
          );
        } else {
          assert.match(link, new RegExp(`^/v2/${repo}/tags/list\\?n=\\d+&last=`), link);
        }
        return link;
      };
      const got = await reader.listAll(repo, `/v2/${repo}/tags/list${LISTING[name].query}`, fix);
      const truth = registry.content.tags(repo, registry.personality.order);
      assert.equal(truth.length, HUGE);
      assert.equal(got.tags.length, HUGE, "no truncation");
      assert.equal(new Set(got.tags).size, HUGE, "no duplicates");
      assert.deepEqual(got.tags, truth, "same tags in the registry's order");
      assert.equal(got.pages, Math.ceil(HUGE / LISTING[name].pageSize));
      // Independently of the order: the same set as the lexical truth.
      assert.deepEqual([...got.tags].sort(), registry.content.tags(repo, "lexical"));
    });
  }

  test("GHCR and Quay list oldest first (latest last), the others lexically", () => {
    for (const name of PERSONALITY_NAMES) {
      const { registry } = reg(name);
      const tags = registry.content.tags(hugeRepository(registry), registry.personality.order);
      const sorted = [...tags].sort();
      if (name === "ghcr" || name === "quay") {
        assert.notDeepEqual(tags, sorted, name);
        assert.equal(tags.at(-1), "latest", name);
      } else assert.deepEqual(tags, sorted, name);
    }
  });
});

describe("manifests and blobs", () => {
  test("every digest is the sha256 of the bytes served, by tag, by digest and for HEAD", async () => {
    const kinds = new Set<string>();
    for (const name of ["distribution3", "dockerhub", "artifactory"] as const) {
      const { registry, reader } = reg(name);
      // The huge repository's truth would build 25,000 images; its listing is tested above.
      const repos = registry.content.repositories().slice(1, 13);
      for (const repo of repos) {
        const truth = registry.content.truth(repo).slice(0, 4);
        for (const { tag, digest } of truth) {
          const get = await reader.get(`/v2/${repo}/manifests/${tag}`, { repository: repo });
          assert.equal(get.status, 200);
          assert.equal(sha256(get.body), digest, `${name} ${repo}:${tag}`);
          assert.equal(get.headers["docker-content-digest"], digest);
          const head = await reader.get(`/v2/${repo}/manifests/${tag}`, {
            repository: repo,
            method: "HEAD",
          });
          assert.equal(head.status, 200);
          assert.equal(head.headers["docker-content-digest"], digest);
          assert.equal(Number(head.headers["content-length"]), get.body.length);
          assert.equal(head.headers["content-type"], get.headers["content-type"]);
          const manifest = JSON.parse(get.body.toString("utf8")) as {
            mediaType: string;
            manifests?: Array<{ digest: string; size: number }>;
            config?: { digest: string; size: number };
            layers?: Array<{ digest: string }>;
          };
          assert.equal(get.headers["content-type"], manifest.mediaType);
          kinds.add(manifest.mediaType);
          const images = [];
          if (manifest.manifests !== undefined) {
            for (const child of manifest.manifests) {
              const c = await reader.get(`/v2/${repo}/manifests/${child.digest}`, {
                repository: repo,
              });
              assert.equal(c.status, 200);
              assert.equal(sha256(c.body), child.digest);
              assert.equal(c.body.length, child.size);
              const h = await reader.get(`/v2/${repo}/manifests/${child.digest}`, {
                repository: repo,
                method: "HEAD",
              });
              assert.equal(h.status, 200);
              assert.equal(h.headers["docker-content-digest"], child.digest);
              assert.equal(Number(h.headers["content-length"]), child.size);
              assert.equal(h.headers["content-type"], c.headers["content-type"]);
              images.push(JSON.parse(c.body.toString("utf8")) as typeof manifest);
            }
          } else images.push(manifest);
          for (const image of images) {
            const cfg = image.config as { digest: string; size: number };
            const blob = await reader.get(`/v2/${repo}/blobs/${cfg.digest}`, { repository: repo });
            assert.equal(blob.status, 200);
            assert.equal(sha256(blob.body), cfg.digest);
            assert.equal(blob.body.length, cfg.size);
            const layer = (image.layers ?? [])[0]?.digest as string;
            const lb = await reader.get(`/v2/${repo}/blobs/${layer}`, { repository: repo });
            assert.equal(sha256(lb.body), layer);
          }
        }
      }
    }
    assert.deepEqual([...kinds].sort(), [
      "application/vnd.docker.distribution.manifest.list.v2+json",
      "application/vnd.docker.distribution.manifest.v2+json",
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.oci.image.manifest.v1+json",
    ]);
  });

  test("unknown tags, digests of another repository and unknown repositories are 404s", async () => {
    const { registry, reader } = reg("distribution3");
    const [a, b] = registry.content.repositories().slice(1, 3) as [string, string];
    const digestOfB = registry.content.truth(b)[0]?.digest as string;
    const unknownTag = await reader.get(`/v2/${a}/manifests/no-such-tag`, { repository: a });
    assert.equal(unknownTag.status, 404);
    assert.match(unknownTag.body.toString(), /MANIFEST_UNKNOWN/);
    const foreign = await reader.get(`/v2/${a}/manifests/${digestOfB}`, { repository: a });
    assert.equal(foreign.status, 404);
    for (const ref of ["no-such-tag", digestOfB]) {
      const head = await reader.get(`/v2/${a}/manifests/${ref}`, { repository: a, method: "HEAD" });
      assert.equal(head.status, 404, ref);
    }
    const unknownRepo = await reader.get("/v2/nope/tags/list", { repository: "nope" });
    assert.equal(unknownRepo.status, 404);
    assert.match(unknownRepo.body.toString(), /NAME_UNKNOWN/);
  });

  test("content is a function of the seed", () => {
    const spec = { seed: "determinism", repositories: 50, tags: 2000, huge: [300] };
    const one = new RegistryContent(spec);
    const two = new RegistryContent(spec);
    const other = new RegistryContent({ ...spec, seed: "determinism-2" });
    for (const repo of one.repositories().slice(0, 10)) {
      assert.deepEqual(one.truth(repo), two.truth(repo));
    }
    assert.notDeepEqual(one.truth("huge/repo-0"), other.truth("huge/repo-0"));
    // A skewed fleet: most repositories small, the largest far above the median.
    const counts = one
      .repositories()
      .map((r) => one.tagCount(r))
      .sort((x, y) => x - y);
    const median = counts[Math.floor(counts.length / 2)] as number;
    assert.ok((counts.at(-2) as number) > 5 * median, `skew: ${counts.join(",")}`);
  });
});

test("a digest another process computed from the same seed is served without a GET by tag first", () => {
  const spec = { seed: "by-digest", repositories: 5, tags: 200 };
  const mine = new RegistryContent(spec);
  const fresh = new RegistryContent(spec);
  const repo = mine.repositories()[2] as string;
  const tag = mine.tags(repo)[1] as string;
  const image = mine.resolveTag(repo, tag);
  assert.ok(image);
  const leaf = image.children[0] ?? image;
  assert.equal(fresh.manifestByDigest(repo, image.digest)?.digest, image.digest);
  assert.equal(fresh.manifestByDigest(repo, leaf.digest)?.digest, leaf.digest);
  assert.equal(fresh.blob(repo, leaf.blobs[0]?.digest as string)?.digest, leaf.blobs[0]?.digest);
  assert.equal(fresh.manifestByDigest(repo, `sha256:${"0".repeat(64)}`), undefined);
  assert.equal(fresh.manifestByDigest(mine.repositories()[3] as string, image.digest), undefined);
});

test("with a small digest index, forgotten repositories' digests are found again", () => {
  const spec = { seed: "small-index", repositories: 30, tags: 600, digestIndexEntries: 40 };
  const content = new RegistryContent(spec);
  const known = content.repositories().map((repo) => {
    const tag = content.tags(repo).at(-1) as string;
    const image = content.resolveTag(repo, tag);
    assert.ok(image);
    return { repo, digest: image.digest, config: (image.children[0] ?? image).blobs[0]?.digest };
  });
  // Every repository was used since the first; most have been forgotten by now.
  for (const k of known) {
    assert.equal(content.manifestByDigest(k.repo, k.digest)?.digest, k.digest, k.repo);
    assert.equal(content.blob(k.repo, k.config as string)?.digest, k.config);
  }
});

test("a small image cache serves the same bytes; thousands of digests of a repository are found by digest", () => {
  const spec = { seed: "small-cache", repositories: 3, tags: 60, huge: [3000] };
  const big = new RegistryContent({ ...spec, cacheImages: 100_000 });
  const small = new RegistryContent({ ...spec, cacheImages: 8 });
  // Asked by digest first: the small cache rebuilds the repository's images to index them
  // (its digest table grows from 16 slots to thousands), then rebuilds each image it serves.
  for (const repo of big.repositories()) {
    const tags = big.tags(repo);
    for (const tag of tags) {
      const image = big.resolveTag(repo, tag);
      assert.ok(image);
      for (const m of [image, ...image.children]) {
        assert.deepEqual(small.manifestByDigest(repo, m.digest)?.bytes, m.bytes, `${repo} ${tag}`);
        for (const b of m.blobs) assert.deepEqual(small.blob(repo, b.digest)?.bytes, b.bytes);
      }
    }
    for (const tag of tags) {
      const image = big.resolveTag(repo, tag);
      assert.ok(image);
      assert.deepEqual(small.resolveTag(repo, tag)?.bytes, image.bytes);
      // A HEAD's answer, kept for every manifest built: without rebuilding the image.
      const built = small.imageCounts().built;
      for (const [ref, m] of [
        [tag, image],
        ...image.children.map((c) => [c.digest, c] as const),
      ] as const) {
        assert.deepEqual(small.manifestHead(repo, ref), {
          digest: m.digest,
          mediaType: m.mediaType,
          size: m.bytes.length,
        });
      }
      assert.equal(small.imageCounts().built, built);
    }
    assert.equal(small.manifestHead(repo, "no-such-tag"), undefined);
  }
  // A manifest never built here is built for its HEAD; a digest of a blob is no manifest.
  const fresh = new RegistryContent({ ...spec, cacheImages: 8 });
  const repo = big.repositories()[1] as string;
  const image = big.resolveTag(repo, big.tags(repo)[0] as string);
  assert.ok(image);
  assert.equal(fresh.manifestHead(repo, image.digest)?.size, image.bytes.length);
  const leaf = image.children[0] ?? image;
  assert.equal(fresh.manifestHead(repo, leaf.blobs[0]?.digest as string), undefined);
  const counts = small.imageCounts();
  assert.ok(counts.cached <= 8, `cached ${counts.cached}`);
  assert.ok(counts.built > 3000, `built ${counts.built}`);
});

describe("paging limits", () => {
  test("Quay answers TOO_MANY_TAGS_REQUESTED to n above 100, and serves n=100", async () => {
    const { registry, reader } = reg("quay");
    const repo = hugeRepository(registry);
    const big = await reader.get(`/v2/${repo}/tags/list?n=101`, { repository: repo });
    assert.equal(big.status, 413);
    assert.equal(
      (JSON.parse(big.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code,
      "TOO_MANY_TAGS_REQUESTED",
    );
    const ok = await reader.get(`/v2/${repo}/tags/list?n=100`, { repository: repo });
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body.toString()) as { tags: string[] }).tags.length, 100);
  });

  test("ECR answers 405 to n above 1,000; ACR caps it to 1,000", async () => {
    const ecr = reg("ecr");
    const repo = hugeRepository(ecr.registry);
    assert.equal(
      (await ecr.reader.get(`/v2/${repo}/tags/list?n=1001`, { repository: repo })).status,
      405,
    );
    const full = await ecr.reader.get(`/v2/${repo}/tags/list?n=1000`, { repository: repo });
    assert.equal((JSON.parse(full.body.toString()) as { tags: string[] }).tags.length, 1000);
    const acr = reg("acr");
    const capped = await acr.reader.get(`/v2/${repo}/tags/list?n=5000`, { repository: repo });
    assert.equal(capped.status, 200);
    assert.equal((JSON.parse(capped.body.toString()) as { tags: string[] }).tags.length, 1000);
    assert.match(capped.headers.link ?? "", /n=1000&last=/);
  });

  test("distribution 2.x and Harbor 1.10 ignore n and answer every tag", async () => {
    for (const name of ["distribution2", "harbor110"] as const) {
      const { registry, reader } = reg(name);
      const repo = hugeRepository(registry);
      const res = await reader.get(`/v2/${repo}/tags/list?n=10`, { repository: repo });
      assert.equal((JSON.parse(res.body.toString()) as { tags: string[] }).tags.length, HUGE);
      assert.equal(res.headers.link, undefined);
    }
  });
});

describe("Docker Hub's pull quota", () => {
  test("ratelimit headers fall on a manifest GET, not on a HEAD; an index GET is not a pull", async () => {
    const { registry, reader } = reg("dockerhub");
    const truth = registry.content
      .repositories()
      .slice(1)
      .flatMap((r) => registry.content.truth(r).map((t) => ({ ...t, repo: r })));
    const remaining = (h: Record<string, string>) =>
      Number(/^(\d+);w=21600$/.exec(h["ratelimit-remaining"] ?? "")?.[1]);
    const image = truth.find(
      (t) => registry.content.resolveTag(t.repo, t.tag)?.children.length === 0,
    );
    const index = truth.find(
      (t) => (registry.content.resolveTag(t.repo, t.tag)?.children.length ?? 0) > 0,
    );
    assert.ok(image && index);

    const h1 = await reader.get(`/v2/${image.repo}/manifests/${image.tag}`, {
      repository: image.repo,
      method: "HEAD",
    });
    assert.equal(h1.headers["ratelimit-limit"], "100;w=21600");
    const before = remaining(h1.headers);
    const h2 = await reader.get(`/v2/${image.repo}/manifests/${image.tag}`, {
      repository: image.repo,
      method: "HEAD",
    });
    assert.equal(remaining(h2.headers), before, "HEAD is not a pull");
    const g1 = await reader.get(`/v2/${image.repo}/manifests/${image.tag}`, {
      repository: image.repo,
    });
    assert.equal(remaining(g1.headers), before - 1, "GET is a pull");
    const g2 = await reader.get(`/v2/${index.repo}/manifests/${index.tag}`, {
      repository: index.repo,
    });
    assert.equal(remaining(g2.headers), before - 1, "an index GET alone is not a pull");
    const child = (JSON.parse(g2.body.toString()) as { manifests: Array<{ digest: string }> })
      .manifests[0]?.digest;
    const g3 = await reader.get(`/v2/${index.repo}/manifests/${child}`, { repository: index.repo });
    assert.equal(remaining(g3.headers), before - 2, "each platform manifest GET is a pull");
    assert.equal(registry.pullsRemaining(), before - 2);
  });

  test("past the limit a GET answers 429 TOOMANYREQUESTS, a HEAD still answers", async () => {
    const small = await Simulator.start({
      registries: [
        {
          name: "hub",
          personality: "dockerhub",
          fleet: {
            seed: "quota",
            repositories: 1,
            tags: 5,
            kindMix: { docker: 1, oci: 0, ociIndex: 0, dockerList: 0 },
          },
          pullQuota: { limit: 3, windowSeconds: 21_600 },
        },
      ],
    });
    const reader = new SimReader(small.registry("hub").url);
    try {
      const repo = small.registry("hub").content.repositories()[0] as string;
      const statuses = [];
      for (let i = 0; i < 4; i++)
        statuses.push(
          (await reader.get(`/v2/${repo}/manifests/latest`, { repository: repo })).status,
        );
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const last = await reader.get(`/v2/${repo}/manifests/latest`, { repository: repo });
      assert.match(last.body.toString(), /TOOMANYREQUESTS/);
      assert.equal(last.headers["ratelimit-remaining"], "0;w=21600");
      const head = await reader.get(`/v2/${repo}/manifests/latest`, {
        repository: repo,
        method: "HEAD",
      });
      assert.equal(head.status, 200);
      assert.equal(small.registry("hub").stats.totals.throttled, 2);
    } finally {
      await reader.close();
      await small.stop();
    }
  });
});

describe("tokens, faults and counts", () => {
  test("no token: 401 with a Bearer challenge naming the scope; a token is for its repository only", async () => {
    const { registry, reader } = reg("ghcr");
    const [a, b] = registry.content.repositories().slice(1, 3) as [string, string];
    const ping = await reader.get("/v2/", { token: null });
    assert.equal(ping.status, 401);
    const challenge = parseChallenge(ping.headers["www-authenticate"] ?? "");
    assert.equal(challenge.realm, `${registry.url}/token`);
    assert.equal(challenge.service, "ghcr");
    const bare = await reader.get(`/v2/${a}/tags/list`, { token: null });
    assert.equal(bare.status, 401);
    assert.equal(
      parseChallenge(bare.headers["www-authenticate"] ?? "").scope,
      `repository:${a}:pull`,
    );
    const tokenA = await reader.token(a);
    assert.equal((await reader.get(`/v2/${a}/tags/list`, { token: tokenA })).status, 200);
    assert.equal((await reader.get(`/v2/${b}/tags/list`, { token: tokenA })).status, 401);
    assert.equal((await reader.get(`/v2/${a}/tags/list`, { token: `${tokenA}x` })).status, 401);
    assert.equal((await reader.get("/v2/", { token: tokenA })).status, 200);
    // Another registry of the same simulator does not take it.
    const other = readers.get("quay") as SimReader;
    assert.equal((await other.get(`/v2/${a}/tags/list`, { token: tokenA })).status, 401);
  });

  test("injected 429s carry Retry-After; latency delays answers; every request is counted per second", async () => {
    const { registry, reader } = reg("acr");
    const repo = registry.content.repositories()[1] as string;
    await reader.token(repo);
    const before = { ...registry.stats.totals };
    registry.setFaults({ throttleFraction: 1, retryAfterSeconds: 7 });
    try {
      const res = await reader.get(`/v2/${repo}/manifests/latest`, { repository: repo });
      assert.equal(res.status, 429);
      assert.equal(res.headers["retry-after"], "7");
      registry.setFaults({ latencyMs: 150 });
      const started = performance.now();
      assert.equal(
        (await reader.get(`/v2/${repo}/manifests/latest`, { repository: repo })).status,
        200,
      );
      assert.ok(performance.now() - started >= 140);
    } finally {
      registry.setFaults({});
    }
    for (let i = 0; i < 5; i++)
      await reader.get(`/v2/${repo}/manifests/latest`, { repository: repo, method: "HEAD" });
    const t = registry.stats.totals;
    assert.equal(t.manifestGet - before.manifestGet, 2);
    assert.equal(t.manifestHead - before.manifestHead, 5);
    assert.equal(t.throttled - before.throttled, 1);
    const perSecond = registry.stats.perSecond(120);
    assert.equal(
      perSecond.reduce((s, c) => s + c.total, 0),
      t.total,
    );
    assert.ok(registry.stats.maxInWindow(10) >= 7);
  });

  test("the control API serves registries, stats and truth", async () => {
    const base = sim.controlUrl as string;
    const registries = (await (await fetch(`${base}/_sim/registries`)).json()) as Array<{
      name: string;
      url: string;
    }>;
    assert.deepEqual(
      registries.map((r) => r.name),
      PERSONALITY_NAMES,
    );
    const stats = (await (await fetch(`${base}/_sim/stats?seconds=600`)).json()) as {
      registries: Record<string, { totals: { total: number } }>;
    };
    assert.equal(stats.registries.ghcr?.totals.total, sim.registry("ghcr").stats.totals.total);
    const truth = (await (
      await fetch(`${base}/_sim/truth?registry=ghcr&repository=huge/repo-0`)
    ).json()) as string[];
    assert.equal(truth.length, HUGE);
    const faults = await fetch(`${base}/_sim/faults?registry=ecr`, {
      method: "POST",
      body: JSON.stringify({ latencyMs: 1 }),
    });
    assert.deepEqual(await faults.json(), { latencyMs: 1 });
    sim.registry("ecr").setFaults({});
  });

  test("the stats tell when the simulator's event loop stalled", async () => {
    const base = sim.controlUrl as string;
    type Loop = {
      maxMs: number;
      stallsOver250Ms: number;
      stalls: Array<{ at: number; ms: number; cpuMs: number; gcMs: number }>;
      gc: { minor: { count: number } };
    };
    const loop = async () =>
      (
        (await (await fetch(`${base}/_sim/stats?seconds=600`)).json()) as {
          process: { loop: Loop };
        }
      ).process.loop;
    const before = await loop();
    // The simulator runs in this process here: block its loop as a long GC pause would,
    // allocating enough meanwhile for a few scavenges.
    const blockedAt = Date.now();
    let junk: Array<{ i: number }> = [];
    while (Date.now() - blockedAt < 400) {
      for (let i = 0; i < 1000; i++) junk.push({ i });
      if (junk.length > 100_000) junk = [];
    }
    await new Promise((r) => setTimeout(r, 120));
    const after = await loop();
    assert.ok(after.stallsOver250Ms >= before.stallsOver250Ms + 1);
    assert.ok(after.maxMs >= 340, `max ${after.maxMs}`);
    // Measured from when the 50 ms timer was due, within the first 50 ms of the block.
    const stall = after.stalls.find((x) => x.ms >= 340 && x.at >= blockedAt - 60);
    assert.ok(stall, JSON.stringify(after.stalls));
    assert.ok(Math.abs(stall.at - blockedAt) <= 60, `began ${stall.at - blockedAt} ms off`);
    // Busy, not waiting for a CPU: the process ran meanwhile (how much depends on the load).
    assert.ok(stall.cpuMs > 0, JSON.stringify(stall));
    // The scavenges' pauses within it, from the GC entries (which arrive after the stall).
    assert.ok(stall.gcMs > 0 && stall.gcMs <= stall.ms + 60, JSON.stringify(stall));
    assert.ok(after.gc.minor.count > before.gc.minor.count);
  });

  test("the control API tells when each repository was listed (answered tag-list pages only)", async () => {
    const base = sim.controlUrl as string;
    const { registry, reader } = reg("quay");
    const repo = registry.content.repositories()[1] as string;
    const since = Date.now();
    const listings = async () =>
      (await (await fetch(`${base}/_sim/listings?since=${since}`)).json()) as Record<
        string,
        Record<string, number[]>
      >;
    assert.deepEqual((await listings()).quay, {});
    // Refused (n above 100) and unauthorised pages are not listings.
    assert.equal(
      (await reader.get(`/v2/${repo}/tags/list?n=1000`, { repository: repo })).status,
      413,
    );
    assert.equal((await reader.get(`/v2/${repo}/tags/list`, { token: null })).status, 401);
    assert.deepEqual((await listings()).quay, {});
    await reader.listAll(repo, `/v2/${repo}/tags/list?n=100`);
    await reader.listAll(repo, `/v2/${repo}/tags/list?n=100`);
    const times = (await listings()).quay?.[repo] ?? [];
    assert.ok(times.length >= 2, `two listings recorded, got ${times.length}`);
    assert.ok(times.every((t) => t >= since && t <= Date.now()));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
    );
    // `since` leaves earlier ones out.
    const later = (await (
      await fetch(`${base}/_sim/listings?since=${Date.now() + 1000}`)
    ).json()) as Record<string, Record<string, number[]>>;
    assert.deepEqual(later.quay, {});
    // Activity: every request naming the repository, as spans of at most a second (first and
    // last request), a manifest HEAD included (a scan working through its tags is not unscanned).
    const other = registry.content.repositories()[2] as string;
    const activity = async () =>
      (await (await fetch(`${base}/_sim/activity?since=${since}`)).json()) as Record<
        string,
        Record<string, number[]>
      >;
    assert.equal((await activity()).quay?.[other], undefined);
    const tag = registry.content.tags(other)[0] as string;
    const head = await reader.get(`/v2/${other}/manifests/${tag}`, {
      method: "HEAD",
      repository: other,
    });
    assert.equal(head.status, 200);
    const t0 = Date.now();
    const spans = (await activity()).quay?.[other] ?? [];
    assert.equal(spans.length, 2, "one span: its first and last request");
    assert.equal(spans[0], spans[1], "one request: the span starts and ends with it");
    assert.ok((spans[0] as number) <= t0 && (spans[0] as number) > t0 - 5000, "its exact time");
    // A second request within the second extends the span; one after a gap starts another.
    await reader.get(`/v2/${other}/manifests/${tag}`, { method: "HEAD", repository: other });
    const extended = (await activity()).quay?.[other] ?? [];
    assert.equal(extended.length, 2);
    assert.ok((extended[1] as number) >= (spans[1] as number));
    await new Promise((r) => setTimeout(r, 1100));
    await reader.get(`/v2/${other}/manifests/${tag}`, { method: "HEAD", repository: other });
    const two = (await activity()).quay?.[other] ?? [];
    assert.equal(two.length, 4, "a second span after more than a second without requests");
    assert.ok((two[2] as number) - (two[1] as number) >= 1000, "the gap between them, exact");
    assert.ok((await activity()).quay?.[repo]?.length, "the listings count as activity");
  });
});

describe("churn", () => {
  test("moves and adds tags, records when, and sends distribution webhooks with the bearer token", async () => {
    const received: Array<{ auth: string | undefined; type: string | undefined; body: unknown }> =
      [];
    const hook = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({
          auth: req.headers.authorization,
          type: req.headers["content-type"],
          body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
        });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const port = (hook.address() as { port: number }).port;
    const churnSim = await Simulator.start({
      registries: everyPersonality({ seed: "churn", repositories: 40, tags: 800 }).slice(1, 3),
    });
    try {
      const churn = await churnSim.startChurn({
        perSecond: 40,
        seed: "c1",
        webhook: { url: `http://127.0.0.1:${port}/hook`, token: "hook-secret" },
      });
      await waitFor(() => churn.changes.length >= 20, {
        what: "20 changes from the churn",
        timeoutMs: 10_000,
      });
      await churnSim.stopChurn();
      const changes = [...churn.changes];
      assert.ok(changes.length >= 20, `${changes.length} changes`);
      assert.ok(
        changes.some((c) => c.action === "move") && changes.some((c) => c.action === "add"),
      );
      // The truth now is the last change of each tag.
      const last = new Map(changes.map((c) => [`${c.registry} ${c.repository} ${c.tag}`, c]));
      for (const c of last.values()) {
        const content = churnSim.registry(c.registry).content;
        assert.equal(content.resolveTag(c.repository, c.tag)?.digest, c.digest);
        assert.ok(content.tags(c.repository).includes(c.tag));
      }
      for (const [i, c] of changes.entries())
        if (i > 0) assert.ok(c.at >= (changes[i - 1] as { at: number }).at);
      assert.equal(
        received.length + churn.webhooks.dropped + churn.webhooks.failed,
        changes.length,
      );
      assert.ok(received.length > 0);
      const first = received[0] as (typeof received)[number];
      assert.equal(first.auth, "Bearer hook-secret");
      assert.equal(first.type, "application/vnd.docker.distribution.events.v1+json");
      const event = (first.body as { events: Array<Record<string, unknown>> }).events[0] as {
        action: string;
        target: {
          repository: string;
          tag: string;
          digest: string;
          mediaType: string;
          size: number;
          length: number;
          url: string;
        };
        source: { addr: string };
      };
      assert.equal(event.action, "push");
      const match = changes.find(
        (c) =>
          c.repository === event.target.repository &&
          c.tag === event.target.tag &&
          c.digest === event.target.digest,
      );
      assert.ok(match, "the webhook names a recorded change");
      assert.equal(event.target.size, match.size);
      assert.equal(event.target.length, match.size);
      assert.equal(
        event.target.url,
        `${churnSim.registry(match.registry).url}/v2/${match.repository}/manifests/${match.digest}`,
      );
      assert.equal(event.source.addr, churnSim.registry(match.registry).host);
    } finally {
      await churnSim.stop();
      await new Promise<void>((r) => hook.close(() => r()));
    }
  });
});

/**
 * regscan's RemoteClientFactory on every personality (Quay's refused page size, Artifactory's
 * next link without the virtual repository and Nexus's without the port included; see
 * client-personalities.test.ts for the CLI and the requests made).
 */
describe("regscan's client lists a 25,000-tag repository exactly", () => {
  const working: PersonalityName[] = PERSONALITY_NAMES;
  for (const name of working) {
    test(name, async () => {
      const { registry } = reg(name);
      const r = await checkRegscanClient(registry, hugeRepository(registry));
      assert.equal(r.error, undefined);
      assert.deepEqual(
        { listed: r.listed, duplicates: r.duplicates, missing: r.missing, extra: r.extra },
        { listed: HUGE, duplicates: 0, missing: 0, extra: 0 },
      );
    });
  }
});
