/**
 * Issue 9 item 1 and issue 14 items 11 and 17, against the real registry behind the fault
 * proxy: a long outage (503s, 429s, 404s, bogus digests) never deletes the last good values,
 * which are served with the reason they are stale; a tag never fetched reports its own error;
 * cosign / referrers artifact tags are excluded by name and never requested. The clock is
 * fake (the memory store expires by it), so hours pass in milliseconds.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import { type ImageName, parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { statusJson } from "../../src/server/json-forms.js";
import { ImageBuilder, type PushedManifest } from "../support/image-builder.js";
import type { FaultHook } from "../support/registry.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import { FakeClock } from "./support/fake-registry.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const INTERVAL = 5 * MINUTE;
const TAGS = ["1.0", "1.1", "latest", "stable"];
const BOGUS = `sha256:${"0".repeat(64)}`;

let registry: RegistryHandle;
let app: ImageName;
let signed: ImageName;
let images: Map<string, PushedManifest>;
let subject: PushedManifest;

before(async () => {
  registry = await startRegistry();
  app = parseImageName(`${registry.host}/outage/app`);
  signed = parseImageName(`${registry.host}/outage/signed`);
  const builder = new ImageBuilder(registry);
  try {
    const one = await builder.pushImage("outage/app", ["1.0", "latest"], { seed: "one" });
    const two = await builder.pushImage("outage/app", ["1.1", "stable"], { seed: "two" });
    images = new Map([
      ["1.0", one],
      ["latest", one],
      ["1.1", two],
      ["stable", two],
    ]);
    subject = await builder.pushImage("outage/signed", ["v1"], { seed: "subject" });
    const hex = subject.digest.slice("sha256:".length);
    // Real manifests under the artifact tags: fetching them would find (wrong) images.
    const artifact = await builder.pushImage("outage/signed", [], { seed: "artifact" });
    await builder.tagMany("outage/signed", {
      tags: [`sha256-${hex}.sig`, `sha256-${hex}.att`, `sha256-${hex}.sbom`, `sha256-${hex}`],
      manifest: artifact,
    });
  } finally {
    await builder.close();
  }
});

after(async () => {
  await registry?.stop();
});

function setup() {
  const clock = new FakeClock(Date.now());
  const store = new MemoryStore({ now: clock.now });
  const factory = new RemoteClientFactory({
    insecureHosts: [registry.host],
    limiters: { rps: 100_000, burst: 1000 },
    retry: { maxAttempts: 1 },
  });
  const metricsRegistry = new MetricsRegistry();
  const warmer = new Warmer({
    store,
    factory,
    now: clock.now,
    intervalMs: INTERVAL,
    metricsRegistry,
  });
  const cache = new Cache({ store, metricsRegistry });
  const scan = async (name: ImageName) => {
    const [r] = await warmer.scan([{ name, creds: Credentials.none() }]);
    assert.ok(r);
    return r;
  };
  return { clock, store, factory, warmer, cache, scan };
}

const manifests = (hook: (req: Parameters<FaultHook>[0]) => ReturnType<FaultHook>): FaultHook => {
  return (req) => (req.path.includes("/manifests/") ? hook(req) : undefined);
};

describe("a long registry outage", () => {
  it("serves the last good values with the reason they are stale, past their old expiry", async () => {
    const { clock, cache, scan, factory } = setup();
    const start = clock.ms;
    try {
      const first = await scan(app);
      assert.deepEqual([first.outcome, first.refreshed, first.errors], ["scanned", 4, 0]);

      const assertServed = async (code: string, when: string) => {
        const md = await cache.getImageRepositoryMetadata(app);
        assert.deepEqual(md.tags.slice().sort(), TAGS.slice().sort(), when);
        assert.equal(md.images.size, TAGS.length, `${when}: every last good value is served`);
        for (const tag of TAGS) {
          assert.equal(md.images.get(tag)?.digest, images.get(tag)?.digest, `${when}: ${tag}`);
        }
        const record = await cache.repositoryRecord(app);
        assert.equal(record?.lastError?.code, code, `${when}: lastError says why`);
        return record;
      };

      // 1h05: the tags are due; every manifest request answers 503.
      clock.ms = start + HOUR + 5 * MINUTE;
      registry.setFault(manifests(() => ({ status: 503, body: "down for maintenance" })));
      const a = await scan(app);
      assert.equal(a.errors, 4);
      assert.ok(a.error, "the scan reports the 503");
      const stale = await cache.cachedTag(app, "1.0");
      assert.equal(stale?.record?.lastError?.code, a.error.code, "the tag says why it is stale");
      await assertServed(a.error.code, "after 503s");

      // 1h25: 429 everywhere, the tag list included.
      clock.ms = start + HOUR + 25 * MINUTE;
      registry.setFault(() => ({ status: 429, headers: { "retry-after": "1" } }));
      const b = await scan(app);
      assert.equal(b.outcome, "failed");
      assert.equal(b.error?.code, "TOO_MANY_REQUESTS");
      await assertServed("TOO_MANY_REQUESTS", "after a failed listing");

      // 1h45: HEAD answers 404 for tags the registry still lists.
      clock.ms = start + HOUR + 45 * MINUTE;
      registry.setFault(manifests((req) => (req.method === "HEAD" ? { status: 404 } : undefined)));
      const c = await scan(app);
      assert.equal(c.errors, 4, "a 404 of a listed tag is an error, not a silent success");
      await assertServed("MANIFEST_UNKNOWN", "after HEAD 404s");

      // 2h05: HEAD names a digest the registry does not have.
      clock.ms = start + 2 * HOUR + 5 * MINUTE;
      registry.setFault(
        manifests((req) =>
          req.method === "HEAD"
            ? {
                status: 200,
                headers: {
                  "docker-content-digest": BOGUS,
                  "content-type": "application/vnd.docker.distribution.manifest.v2+json",
                },
              }
            : undefined,
        ),
      );
      const d = await scan(app);
      assert.equal(d.errors, 4, "a bogus digest is an error");
      assert.match(d.error?.message ?? "", new RegExp(BOGUS));

      // 2h10: past the first scan's store expiry (2 h), everything is still served.
      clock.ms = start + 2 * HOUR + 10 * MINUTE;
      await assertServed("MANIFEST_UNKNOWN", "at T + 2h10m");

      // Ten more hours of 429s, a scan every interval: still served, for as long as watched.
      registry.setFault(() => ({ status: 429 }));
      for (let t = clock.ms; t < start + 12 * HOUR; t += INTERVAL) {
        clock.ms = t;
        assert.equal((await scan(app)).error?.code, "TOO_MANY_REQUESTS");
      }
      await assertServed("TOO_MANY_REQUESTS", "at T + 12h");

      // The registry is back: the tags are fresh again, without a last error.
      registry.setFault(undefined);
      clock.ms += INTERVAL;
      const back = await scan(app);
      assert.deepEqual([back.outcome, back.errors, back.unchanged], ["scanned", 0, 4]);
      assert.equal((await cache.cachedTag(app, "1.0"))?.record?.lastError, undefined);
      assert.equal((await cache.repositoryRecord(app))?.lastError, undefined);
    } finally {
      registry.setFault(undefined);
      await factory.close();
    }
  });

  it("a 429 partway through a rescan keeps the tags it did not reach, with the 429 as their reason", async () => {
    const { clock, cache, factory, store } = setup();
    // One tag at a time, so that the tags after the 429 are never reached.
    const warmer = new Warmer({
      store,
      factory,
      now: clock.now,
      intervalMs: INTERVAL,
      burst: 1,
      metricsRegistry: new MetricsRegistry(),
    });
    const scan = async () => (await warmer.scan([{ name: app, creds: Credentials.none() }]))[0];
    try {
      assert.equal((await scan())?.refreshed, 4);
      clock.ms += HOUR + 5 * MINUTE;
      // The second tag checked gets the 429, whichever it is.
      let heads = 0;
      registry.setFault(
        manifests((req) => (req.method === "HEAD" && ++heads === 2 ? { status: 429 } : undefined)),
      );
      const r = await scan();
      assert.equal(r?.outcome, "failed");
      assert.equal(r?.error?.code, "TOO_MANY_REQUESTS");
      assert.equal(heads, 2, "nothing is asked after the 429");
      const reasons: (string | undefined)[] = [];
      for (const tag of TAGS) {
        const kept = await cache.cachedTag(app, tag);
        reasons.push(kept?.record?.lastError?.code);
        assert.equal(kept?.record?.digest, images.get(tag)?.digest, `${tag} is served`);
      }
      // One tag checked before the 429; the one refused and the two never reached say why.
      assert.deepEqual(reasons.sort(), [
        "TOO_MANY_REQUESTS",
        "TOO_MANY_REQUESTS",
        "TOO_MANY_REQUESTS",
        undefined,
      ]);
    } finally {
      registry.setFault(undefined);
      await factory.close();
    }
  });

  it("answers a listed tag that was never fetched with its own error, not NOT_CACHED", async () => {
    const { cache, scan, factory } = setup();
    try {
      registry.setFault(
        manifests((req) => (req.path.endsWith("/1.1") ? { status: 401 } : undefined)),
      );
      const r = await scan(app);
      assert.equal(r.errors, 1);
      await assert.rejects(cache.getImage(app.withTag("1.1")), (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.equal((error as { code?: string }).code, "TAG_FETCH_FAILED");
        assert.equal((error as { lastErrorCode?: string }).lastErrorCode, r.error?.code);
        assert.doesNotMatch(error.message, /regscan scan/);
        return true;
      });
      assert.equal((await cache.getImage(app.withTag("1.0"))).digest, images.get("1.0")?.digest);
      const listed = await cache.cachedTags(app);
      assert.equal(listed.find((t) => t.tag === "1.1")?.fetchError?.code, r.error?.code);
    } finally {
      registry.setFault(undefined);
      await factory.close();
    }
  });
});

describe("artifact tags", () => {
  it("excludes cosign and referrers tags by name, never requests them, and counts them", async () => {
    const { cache, scan, factory, warmer } = setup();
    try {
      registry.resetRequests();
      const r = await scan(signed);
      assert.deepEqual(
        [r.outcome, r.tags, r.artifacts, r.excluded, r.errors],
        ["scanned", 5, 4, 4, 0],
      );
      const manifestPaths = registry
        .requests()
        .filter((q) => q.path.includes("/manifests/"))
        .map((q) => q.path);
      assert.ok(
        manifestPaths.every((p) => !p.includes("/manifests/sha256-")),
        `no artifact tag was requested: ${manifestPaths.join(", ")}`,
      );
      const md = await cache.getImageRepositoryMetadata(signed);
      assert.deepEqual([...md.images.keys()], ["v1"]);
      assert.equal((await cache.repositoryRecord(signed))?.artifactTags, 4);
      // Counted for the API's /v1/repositories.
      const status = warmer.repositoryStatus(signed);
      assert.ok(status);
      assert.equal(statusJson(status).artifactTags, 4);
      const hex = subject.digest.slice("sha256:".length);
      const kinds = {
        [`sha256-${hex}.sig`]: "cosign signature",
        [`sha256-${hex}.att`]: "cosign attestation",
        [`sha256-${hex}.sbom`]: "cosign SBOM",
        [`sha256-${hex}`]: "OCI referrers fallback index",
      };
      for (const [tag, kind] of Object.entries(kinds)) {
        await assert.rejects(cache.getImage(signed.withTag(tag)), (error: unknown) => {
          assert.equal((error as { code?: string }).code, "IMAGE_EXCLUDED");
          const reason = (error as { excludedReason?: string }).excludedReason ?? "";
          assert.ok(reason.includes(kind) && reason.includes(subject.digest), reason);
          return true;
        });
      }
    } finally {
      await factory.close();
    }
  });
});
