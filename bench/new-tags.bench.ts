/**
 * What a cold fill costs in registry requests (bench/results/new-tags.json): the warmer over
 * a simulated fleet (30 repositories, about 3,000 tags, most over distinct images, a few
 * sharing) on a distribution 3 registry and a Docker Hub one, with the new-tag plan (one GET
 * by tag where tags seldom share images) against HEAD first for every tag (the client
 * without `fetchTag`, as before), in the same run. Requests are the simulator's own counts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { Registry as MetricsRegistry } from "prom-client";
import { MemoryStore } from "../src/cache/stores/memory.js";
import { Warmer } from "../src/cache/warmer.js";
import { parseImageName } from "../src/image/ref.js";
import type { ClientFactory } from "../src/registry/client.js";
import { Credentials } from "../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../src/registry/factory.js";
import type { SimRegistry } from "./sim/registry-server.js";
import { Simulator } from "./sim/simulator.js";

const fleet = { seed: "new-tags-bench", repositories: 30, tags: 3000 };

async function fill(reg: SimRegistry, headFirst: boolean) {
  const kinds: Record<string, number> = {};
  const stop = reg.onRequest((r) => {
    kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
  });
  const remote = new RemoteClientFactory({
    insecureHosts: [reg.host],
    limiters: { rps: 100_000, burst: 1000 },
  });
  // HEAD first for every tag: the same clients without fetchTag.
  const factory: ClientFactory = headFirst
    ? {
        clientFor: (n, c, o) => {
          const client = remote.clientFor(n, c, o);
          return {
            tags: (opts) => client.tags(opts),
            head: (ref, opts) => client.head(ref, opts),
            manifest: (ref, opts) => client.manifest(ref, opts),
          };
        },
        succeed: (n) => remote.succeed(n),
      }
    : remote;
  const warmer = new Warmer({
    store: new MemoryStore(),
    factory,
    burst: 10,
    concurrency: 2,
    metricsRegistry: new MetricsRegistry(),
  });
  const started = performance.now();
  try {
    const results = await warmer.scan(
      reg.content.repositories().map((r) => ({
        name: parseImageName(`${reg.host}/${r}`),
        creds: Credentials.none(),
      })),
    );
    const tags = results.reduce((n, r) => n + r.tags, 0);
    const errors = results.reduce((n, r) => n + r.errors, 0);
    const metadata = (kinds.manifestHead ?? 0) + (kinds.manifestGet ?? 0) + (kinds.blob ?? 0);
    return {
      tags,
      errors,
      requests: kinds,
      metadataRequests: metadata,
      perTag: Math.round((metadata / tags) * 1000) / 1000,
      seconds: Math.round(performance.now() - started) / 1000,
    };
  } finally {
    stop();
    await remote.close();
  }
}

const sim = await Simulator.start({
  registries: [
    { name: "dist", personality: "distribution3", fleet },
    {
      name: "hub",
      personality: "dockerhub",
      fleet,
      pullQuota: { limit: 1_000_000, windowSeconds: 21_600 },
    },
  ],
});
try {
  const out: Record<string, unknown> = {};
  for (const name of ["dist", "hub"]) {
    const reg = sim.registry(name);
    const truth = reg.content.repositories().flatMap((r) => reg.content.truth(r));
    const images = new Set(truth.map((t) => t.digest)).size;
    const plan = await fill(reg, false);
    const before = await fill(reg, true);
    const ratio = Math.round((plan.metadataRequests / before.metadataRequests) * 1000) / 1000;
    out[name] = { tags: truth.length, distinctImages: images, plan, headFirst: before, ratio };
    console.log(
      `${name}: ${truth.length} tags over ${images} images: ${plan.metadataRequests} metadata requests (${plan.perTag}/tag) with the plan, ${before.metadataRequests} (${before.perTag}/tag) HEAD first: ${ratio}x`,
    );
    console.log(
      `  plan ${JSON.stringify(plan.requests)}; HEAD first ${JSON.stringify(before.requests)}`,
    );
  }
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/new-tags.json", `${JSON.stringify(out, null, 2)}\n`);
} finally {
  await sim.stop();
}
