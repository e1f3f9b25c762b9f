/**
 * RemoteClient against the real distribution registry in anonymous, htpasswd and token
 * modes: every manifest kind to ImageEntry, platform choice, HEAD, errors; and the request
 * counts the recording proxy and the token server saw (pings, tokens, pages, config blobs).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import {
  RemoteClientFactory,
  type RemoteClientFactoryOptions,
} from "../../src/registry/factory.js";
import { RateLimiters } from "../../src/registry/http/rate-limiters.js";
import { type FaultHook, withFault } from "../support/faults.js";
import { ImageBuilder, type PushedImage, type PushedIndex } from "../support/image-builder.js";
import { type RegistryHandle, type RegistryMode, startRegistry } from "../support/registry.js";

interface Fixture {
  reg: RegistryHandle;
  creds: Credentials;
  schema2: PushedImage;
  oci: PushedImage;
  ociIndex: PushedIndex;
  dockerList: PushedIndex;
}

function credsFor(reg: RegistryHandle): Credentials {
  const [user, pass] = Object.entries(reg.users)[0] ?? [];
  if (user === undefined) return Credentials.none();
  return Credentials.parse(
    "test-config.json",
    JSON.stringify({ auths: { [reg.host]: { username: user, password: pass } } }),
  );
}

function platformsSpec(prefix: string) {
  return [
    {
      os: "linux",
      architecture: "amd64",
      created: "2024-01-01T00:00:00Z",
      labels: { which: `${prefix}-amd64` },
    },
    {
      os: "linux",
      architecture: "arm64",
      variant: "v8",
      created: "2024-02-02T00:00:00Z",
      labels: { which: `${prefix}-arm64` },
    },
    {
      os: "linux",
      architecture: "arm",
      variant: "v7",
      created: "2024-03-03T00:00:00Z",
      labels: { which: `${prefix}-armv7` },
    },
  ];
}

async function setUp(mode: RegistryMode): Promise<Fixture> {
  const reg = await startRegistry({ mode });
  const b = new ImageBuilder(reg);
  try {
    const schema2 = await b.pushImage("app", ["s2", "s2-again"], {
      created: "2023-05-06T07:08:09Z",
      labels: { "org.opencontainers.image.title": "schema2", mode },
    });
    const oci = await b.pushImage("app", ["oci"], {
      format: "oci",
      created: "2022-01-02T03:04:05.123456789Z",
      labels: { kind: "oci" },
      annotations: { "org.opencontainers.image.source": "https://example.com/src" },
    });
    const ociIndex = await b.pushIndex("app", ["index"], { platforms: platformsSpec("oci") });
    const dockerList = await b.pushIndex("app", ["list"], {
      format: "docker",
      platforms: platformsSpec("docker"),
    });
    await b.pushImage("other", ["latest"]);
    return { reg, creds: credsFor(reg), schema2, oci, ociIndex, dockerList };
  } finally {
    await b.close();
  }
}

const modes: RegistryMode[] = ["anonymous", "htpasswd", "token"];
const fixtures = new Map<RegistryMode, Fixture>();
const factories: RemoteClientFactory[] = [];

function factory(fx: Fixture, opts: RemoteClientFactoryOptions = {}): RemoteClientFactory {
  const f = new RemoteClientFactory({ insecureHosts: [fx.reg.host], ...opts });
  factories.push(f);
  return f;
}

before(async () => {
  const started = await Promise.all(modes.map((m) => setUp(m)));
  for (const [i, m] of modes.entries()) fixtures.set(m, started[i] as Fixture);
});

after(async () => {
  await Promise.all(factories.map((f) => f.close()));
  await Promise.all([...fixtures.values()].map((fx) => fx.reg.stop()));
});

function fixture(mode: RegistryMode): Fixture {
  const fx = fixtures.get(mode);
  if (!fx) throw new Error(`no fixture for ${mode}`);
  return fx;
}

for (const mode of modes) {
  describe(`manifests (${mode})`, () => {
    test("schema 2: digest, image ID, created time and labels of the config", async () => {
      const fx = fixture(mode);
      const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
      const entry = await client.manifest("s2");
      assert.ok(entry.info, entry.excludedReason);
      assert.equal(entry.info.digest, fx.schema2.digest);
      assert.equal(entry.info.imageID, fx.schema2.config.digest);
      assert.equal(entry.info.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
      assert.equal(entry.info.createdAt?.toISOString(), "2023-05-06T07:08:09.000Z");
      assert.deepEqual(entry.info.labels, { "org.opencontainers.image.title": "schema2", mode });
      assert.deepEqual(entry.info.platform, { os: "linux", architecture: "amd64" });
      assert.equal(entry.info.platformDigest, undefined);
      assert.equal(entry.info.ref.toString(), `${fx.reg.host}/app:s2`);
    });

    test("OCI manifest: config labels and manifest annotations", async () => {
      const fx = fixture(mode);
      const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
      const entry = await client.manifest("oci");
      assert.ok(entry.info, entry.excludedReason);
      assert.equal(entry.info.digest, fx.oci.digest);
      assert.equal(entry.info.mediaType, "application/vnd.oci.image.manifest.v1+json");
      assert.equal(entry.info.createdAt?.toISOString(), "2022-01-02T03:04:05.123Z");
      // The config's labels alone; the manifest's annotations beside them.
      assert.deepEqual(entry.info.labels, { kind: "oci" });
      assert.deepEqual(entry.info.annotations, {
        "org.opencontainers.image.source": "https://example.com/src",
      });
    });

    for (const [tag, key, prefix] of [
      ["index", "ociIndex", "oci"],
      ["list", "dockerList", "docker"],
    ] as const) {
      test(`${key}: default linux/amd64, arm64 and arm/v7 by option, every platform listed`, async () => {
        const fx = fixture(mode);
        const pushed = fx[key];
        const name = parseImageName(`${fx.reg.host}/app`);
        const cases = [
          {
            platform: undefined,
            want: "linux/amd64",
            created: "2024-01-01T00:00:00.000Z",
            which: `${prefix}-amd64`,
          },
          {
            platform: "linux/arm64",
            want: "linux/arm64/v8",
            created: "2024-02-02T00:00:00.000Z",
            which: `${prefix}-arm64`,
          },
          {
            platform: "linux/arm/v7",
            want: "linux/arm/v7",
            created: "2024-03-03T00:00:00.000Z",
            which: `${prefix}-armv7`,
          },
        ];
        for (const c of cases) {
          const client = factory(fx, c.platform ? { platform: c.platform } : {}).clientFor(
            name,
            fx.creds,
          );
          const entry = await client.manifest(tag);
          assert.ok(entry.info, entry.excludedReason);
          assert.equal(entry.info.digest, pushed.digest, `top-level digest for ${c.want}`);
          assert.equal(entry.info.mediaType, pushed.mediaType);
          const image = pushed.image(c.want);
          assert.equal(entry.info.platformDigest, image.digest);
          assert.equal(entry.info.imageID, image.config.digest);
          assert.equal(entry.info.createdAt?.toISOString(), c.created);
          assert.equal(entry.info.labels.which, c.which);
          assert.equal(entry.info.platforms.length, 3);
        }
      });
    }

    test("a platform the index does not have: excluded, naming the wanted platform", async () => {
      const fx = fixture(mode);
      const client = factory(fx, { platform: "windows/amd64" }).clientFor(
        parseImageName(`${fx.reg.host}/app`),
        fx.creds,
      );
      const entry = await client.manifest("index");
      assert.equal(entry.info, undefined);
      assert.match(entry.excludedReason ?? "", /windows\/amd64/);
    });

    test("by digest, HEAD, and the errors for what does not exist", async () => {
      const fx = fixture(mode);
      const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
      const byDigest = await client.manifest(fx.schema2.digest);
      assert.equal(byDigest.info?.digest, fx.schema2.digest);
      assert.equal(byDigest.info?.ref.digest, fx.schema2.digest);
      const head = await client.head("list");
      assert.equal(head?.digest, fx.dockerList.digest);
      assert.equal(head?.mediaType, fx.dockerList.mediaType);
      assert.equal(await client.head("no-such-tag"), undefined);
      await assert.rejects(client.manifest("no-such-tag"), {
        code: "MANIFEST_UNKNOWN",
        status: 404,
      });
      const missing = factory(fx).clientFor(
        parseImageName(`${fx.reg.host}/no/such/repo`),
        fx.creds,
      );
      await assert.rejects(missing.tags(), (err: { code?: string }) =>
        ["NAME_UNKNOWN", "UNAUTHORIZED", "DENIED"].includes(err.code ?? ""),
      );
    });

    test("every request gives its connection back: one connection per host serves them all", async () => {
      const fx = fixture(mode);
      // With one request in flight per host, a connection never given back would hold the
      // next request until the test times out.
      const f = factory(fx, { limiters: new RateLimiters({ maxInFlight: 1 }) });
      const client = f.clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
      const results = await Promise.allSettled([
        client.tags(),
        client.manifest("s2"),
        client.manifest("index"),
        client.manifest(fx.oci.digest),
        client.head("list"),
        client.head("no-such-tag"),
        client.manifest("no-such-tag"),
        f.clientFor(parseImageName(`${fx.reg.host}/no/such/repo`), fx.creds).tags(),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        [
          "fulfilled",
          "fulfilled",
          "fulfilled",
          "fulfilled",
          "fulfilled",
          "fulfilled",
          "rejected",
          "rejected",
        ],
      );
      for (const host of f.limiters.hosts()) {
        assert.equal(
          f.limiters.state(host).inFlight,
          0,
          `${host}: a request still holds its connection`,
        );
      }
      assert.ok(f.limiters.hosts().includes(fx.reg.host.toLowerCase()));
    });
  });
}

describe("request counts", () => {
  test("one ping per host per factory, one token per scope until it expires", async () => {
    const fx = fixture("token");
    let now = Date.now();
    const f = factory(fx, { now: () => now });
    const app = f.clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
    const app2 = f.clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
    const other = f.clientFor(parseImageName(`${fx.reg.host}/other`), fx.creds);
    fx.reg.resetRequests();
    fx.reg.tokenServer?.resetRequests();
    await Promise.all([app.tags(), app2.tags(), other.tags()]);
    await app.manifest("s2");
    await app2.head("s2");
    await other.manifest("latest");
    const pings = fx.reg.requests().filter((r) => r.path === "/v2/");
    assert.equal(pings.length, 1, "one ping for the host");
    const tokens = () => (fx.reg.tokenServer?.requests() ?? []).filter((r) => r.status === 200);
    const byScope = (scope: string) => tokens().filter((r) => r.scopes.includes(scope)).length;
    assert.equal(byScope("repository:app:pull"), 1);
    assert.equal(byScope("repository:other:pull"), 1);
    // Tokens live 300 s here; past that (minus the margin) the next request fetches one.
    now += 299_000;
    await app.tags();
    assert.equal(byScope("repository:app:pull"), 2, "a fresh token after expiry");
    assert.equal(fx.reg.requests().filter((r) => r.path === "/v2/").length, 1, "still one ping");
  });

  test("a 401 on a cached token: one fresh token and one retry", async () => {
    const fx = fixture("token");
    const f = factory(fx);
    const client = f.clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
    await client.tags();
    fx.reg.tokenServer?.resetRequests();
    let refused = 0;
    await withFault(
      fx.reg,
      (req) => {
        if (req.path.endsWith("/manifests/s2") && refused === 0) {
          refused++;
          return {
            status: 401,
            headers: {
              "www-authenticate": `Bearer realm="${fx.reg.tokenServer?.realm}",service="${fx.reg.service}",scope="repository:app:pull"`,
            },
            body: { errors: [{ code: "UNAUTHORIZED", message: "token expired" }] },
          };
        }
        return undefined;
      },
      async () => {
        const entry = await client.manifest("s2");
        assert.equal(entry.info?.digest, fx.schema2.digest);
        assert.equal(refused, 1);
        assert.equal((fx.reg.tokenServer?.requests() ?? []).length, 1, "exactly one fresh token");
      },
    );
  });

  test("a 401 on a token fetched for this very request: no second token, UNAUTHORIZED", async () => {
    const fx = fixture("token");
    const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
    fx.reg.tokenServer?.resetRequests();
    let refused = 0;
    await withFault(
      fx.reg,
      (req) => {
        if (!req.path.endsWith("/manifests/s2")) return undefined;
        refused++;
        return {
          status: 401,
          headers: {
            "www-authenticate": `Bearer realm="${fx.reg.tokenServer?.realm}",service="${fx.reg.service}",scope="repository:app:pull"`,
          },
          body: { errors: [{ code: "UNAUTHORIZED", message: "insufficient scope" }] },
        };
      },
      async () => {
        await assert.rejects(client.manifest("s2"), { code: "UNAUTHORIZED", status: 401 });
        assert.equal(refused, 1, "a token just issued is not retried");
        assert.equal((fx.reg.tokenServer?.requests() ?? []).length, 1, "one token fetched");
      },
    );
  });

  test("two callers share a manifest fetch by digest; one giving up does not fail the other", async () => {
    const fx = fixture("htpasswd");
    const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
    await client.tags(); // warms the ping
    const gone = new AbortController();
    const first = client.manifest(fx.schema2.digest, { signal: gone.signal });
    const second = client.manifest(fx.schema2.digest);
    gone.abort(new Error("first caller gave up"));
    await assert.rejects(first, /first caller gave up/);
    const entry = await second;
    assert.equal(entry.info?.digest, fx.schema2.digest);
  });

  test("two tags of the same image fetch its config blob once per client", async () => {
    const fx = fixture("htpasswd");
    const f = factory(fx);
    const name = parseImageName(`${fx.reg.host}/app`);
    const client = f.clientFor(name, fx.creds);
    fx.reg.resetRequests();
    const [a, b] = await Promise.all([client.manifest("s2"), client.manifest("s2-again")]);
    await client.manifest("s2");
    assert.equal(a.info?.imageID, b.info?.imageID);
    const configGets = () =>
      fx.reg.requests().filter((r) => r.path.endsWith(`/blobs/${fx.schema2.config.digest}`)).length;
    assert.equal(configGets(), 1);
    await f.clientFor(name, fx.creds).manifest("s2");
    assert.equal(configGets(), 2, "a new client fetches it again");
  });

  test("what a client keeps by digest is bounded by the bytes it was decoded from", async () => {
    const fx = fixture("htpasswd");
    const name = parseImageName(`${fx.reg.host}/app`);
    const configGets = (digest: string) =>
      fx.reg.requests().filter((r) => r.path.endsWith(`/blobs/${digest}`)).length;
    const s2 = fx.schema2.config;
    const oci = fx.oci.config;
    // Room for either config, not both: the older goes when the newer comes.
    const one = factory(fx, { maxCachedDigestBytes: Math.max(s2.size, oci.size) });
    let client = one.clientFor(name, fx.creds);
    fx.reg.resetRequests();
    await client.manifest("s2");
    await client.manifest("s2-again");
    assert.equal(configGets(s2.digest), 1, "kept while it fits");
    await client.manifest("oci");
    await client.manifest("s2");
    assert.equal(configGets(s2.digest), 2, "evicted by the next config");
    // Smaller than any config: nothing is kept, every tag fetches it.
    client = factory(fx, { maxCachedDigestBytes: 1 }).clientFor(name, fx.creds);
    fx.reg.resetRequests();
    await client.manifest("s2");
    await client.manifest("s2-again");
    assert.equal(configGets(s2.digest), 2);
  });

  test("listing N tags costs one request per page, following Link to the end", async () => {
    const fx = fixture("anonymous");
    const b = new ImageBuilder(fx.reg);
    const tags = Array.from({ length: 250 }, (_, i) => `t${String(i).padStart(4, "0")}`);
    try {
      await b.tagMany("paged", { tags, manifest: await b.pushImage("paged", ["base"]) });
    } finally {
      await b.close();
    }
    fx.reg.setPagination({ maxPageSize: 100 });
    try {
      const f = factory(fx, { tagPageSize: 100 });
      const client = f.clientFor(parseImageName(`${fx.reg.host}/paged`), fx.creds);
      await client.tags(); // warms the ping
      fx.reg.resetRequests();
      const got = await client.tags();
      assert.deepEqual(got, ["base", ...tags].sort());
      const pages = fx.reg.requests().filter((r) => r.path === "/v2/paged/tags/list");
      assert.equal(pages.length, 3);
      const limited = factory(fx, { tagPageSize: 100, maxTagPages: 2 });
      await assert.rejects(
        limited.clientFor(parseImageName(`${fx.reg.host}/paged`), fx.creds).tags(),
        {
          code: "TAG_LIST_LIMIT",
          message: /2 pages/,
        },
      );
      const fewTags = factory(fx, { tagPageSize: 100, maxTags: 120 });
      await assert.rejects(
        fewTags.clientFor(parseImageName(`${fx.reg.host}/paged`), fx.creds).tags(),
        {
          code: "TAG_LIST_LIMIT",
          message: /120 tags/,
        },
      );
    } finally {
      fx.reg.setPagination(false);
    }
  });

  test("a next page on another origin fails the listing rather than cutting it short", async () => {
    const fx = fixture("anonymous");
    await withFault(
      fx.reg,
      (req) =>
        req.path === "/v2/app/tags/list"
          ? {
              status: 200,
              headers: {
                "content-type": "application/json",
                link: '<https://elsewhere.example/v2/app/tags/list?last=s2>; rel="next"',
              },
              body: { name: "app", tags: ["s2"] },
            }
          : undefined,
      async () => {
        const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
        await assert.rejects(client.tags(), {
          code: "TAG_LIST_LIMIT",
          message: /another origin \(https:\/\/elsewhere\.example\)/,
        });
      },
    );
  });
});

describe("integrity and odd manifests (answers injected by the proxy)", () => {
  const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

  /** A fault that answers `path` with `body` and `headers` instead of the registry. */
  function answering(path: string, body: Buffer, headers: Record<string, string>): FaultHook {
    return (req) => (req.path === path ? { status: 200, headers, body } : undefined);
  }

  test("HEAD by digest answered with another digest: DIGEST_MISMATCH; without one: a verified GET", async () => {
    const fx = fixture("anonymous");
    const path = `/v2/app/manifests/${fx.schema2.digest}`;
    await withFault(
      fx.reg,
      (req) =>
        req.path === path && req.method === "HEAD"
          ? {
              status: 200,
              headers: {
                "content-type": fx.schema2.mediaType,
                "docker-content-digest": `sha256:${"2".repeat(64)}`,
              },
            }
          : undefined,
      async () => {
        const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
        await assert.rejects(client.head(fx.schema2.digest), {
          code: "DIGEST_MISMATCH",
          message: /manifest \(HEAD\)/,
        });
        fx.reg.setFault((req) =>
          req.path === "/v2/app/manifests/s2" && req.method === "HEAD"
            ? { status: 200, headers: { "content-type": fx.schema2.mediaType } }
            : undefined,
        );
        fx.reg.resetRequests();
        const head = await client.head("s2");
        assert.equal(head?.digest, fx.schema2.digest);
        const gets = fx.reg.requests().filter((r) => r.method === "GET" && r.path.endsWith("/s2"));
        assert.equal(gets.length, 1, "the digest came from a GET of the bytes");
      },
    );
  });

  test("a Docker-Content-Digest that does not match the bytes: DIGEST_MISMATCH", async () => {
    const fx = fixture("anonymous");
    const body = fx.schema2.manifest;
    await withFault(
      fx.reg,
      answering("/v2/app/manifests/s2", body, {
        "content-type": fx.schema2.mediaType,
        "docker-content-digest": `sha256:${"1".repeat(64)}`,
      }),
      async () => {
        const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
        await assert.rejects(client.manifest("s2"), { code: "DIGEST_MISMATCH" });
      },
    );
  });

  test("asked by digest, answered with other bytes: DIGEST_MISMATCH", async () => {
    const fx = fixture("anonymous");
    await withFault(
      fx.reg,
      answering(`/v2/app/manifests/${fx.schema2.digest}`, fx.oci.manifest, {
        "content-type": fx.oci.mediaType,
      }),
      async () => {
        const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
        await assert.rejects(client.manifest(fx.schema2.digest), { code: "DIGEST_MISMATCH" });
      },
    );
  });

  test("a manifest over 4 MiB is refused", async () => {
    const fx = fixture("anonymous");
    await withFault(
      fx.reg,
      answering("/v2/app/manifests/huge", Buffer.alloc(4 * 1024 * 1024 + 1, 32), {
        "content-type": fx.schema2.mediaType,
      }),
      async () => {
        const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
        await assert.rejects(client.manifest("huge"), { code: "TOO_LARGE", message: /manifest/ });
      },
    );
  });

  test("an unknown media type: UNSUPPORTED_MEDIA_TYPE", async () => {
    const fx = fixture("anonymous");
    await withFault(
      fx.reg,
      answering("/v2/app/manifests/odd", Buffer.from("{}"), {
        "content-type": "application/vnd.example.thing+json",
      }),
      async () => {
        const client = factory(fx).clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds);
        await assert.rejects(client.manifest("odd"), { code: "UNSUPPORTED_MEDIA_TYPE" });
      },
    );
  });

  test("schema 1: created time and labels from history[0].v1Compatibility, no blob fetched", async () => {
    const fx = fixture("anonymous");
    const v1 = {
      architecture: "arm64",
      os: "linux",
      created: "2019-09-09T09:09:09.123Z",
      config: { Labels: { legacy: "yes" } },
    };
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 1,
        name: "app",
        tag: "old",
        architecture: "arm64",
        fsLayers: [{ blobSum: `sha256:${"a".repeat(64)}` }],
        history: [{ v1Compatibility: JSON.stringify(v1) }],
      }),
    );
    await withFault(
      fx.reg,
      answering("/v2/app/manifests/old", body, {
        "content-type": "application/vnd.docker.distribution.manifest.v1+json",
        "docker-content-digest": sha(body),
      }),
      async () => {
        fx.reg.resetRequests();
        const entry = await factory(fx)
          .clientFor(parseImageName(`${fx.reg.host}/app`), fx.creds)
          .manifest("old");
        assert.ok(entry.info, entry.excludedReason);
        assert.equal(entry.info.digest, sha(body));
        assert.equal(entry.info.createdAt?.toISOString(), "2019-09-09T09:09:09.123Z");
        assert.deepEqual(entry.info.labels, { legacy: "yes" });
        assert.equal(entry.info.imageID, undefined);
        assert.equal(fx.reg.requests().filter((r) => r.path.includes("/blobs/")).length, 0);
      },
    );
  });
});
