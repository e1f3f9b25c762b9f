/**
 * Deadlines and dropped connections, with the fault proxy in front of the real registry: a
 * dripped body or a registry that never answers fails with TIMEOUT naming the host (and a
 * stalled scan records it), a whole tag listing has its own deadline, and a connection
 * reset mid-body is a NETWORK error that GETs retry like one reset before the headers.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { pino } from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { openStore } from "../../../src/cache/open-store.js";
import { Warmer } from "../../../src/cache/warmer.js";
import { loadConfig } from "../../../src/config/load.js";
import { createClientFactory } from "../../../src/daemon/client-factory.js";
import { parseImageName } from "../../../src/image/ref.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import {
  RemoteClientFactory,
  type RemoteClientFactoryOptions,
} from "../../../src/registry/factory.js";
import { runCli } from "../../support/cli.js";
import { withFault } from "../../support/faults.js";
import { ImageBuilder, type PushedImage } from "../../support/image-builder.js";
import { type FaultHook, type RegistryHandle, startRegistry } from "../../support/registry.js";

let reg: RegistryHandle;
let image: PushedImage;
const factories: RemoteClientFactory[] = [];
const TAGS = Array.from({ length: 40 }, (_, i) => `v${i}`);

before(async () => {
  reg = await startRegistry({ mode: "anonymous" });
  const b = new ImageBuilder(reg);
  image = await b.pushImage("app", ["latest"]);
  await b.tagMany("app", { tags: TAGS, manifest: image });
  await b.close();
});

after(async () => {
  await Promise.all(factories.map((f) => f.close()));
  await reg.stop();
});

function client(opts: RemoteClientFactoryOptions = {}) {
  const f = new RemoteClientFactory({
    insecureHosts: [reg.host],
    retry: { baseDelayMs: 10, maxDelayMs: 20 },
    ...opts,
  });
  factories.push(f);
  return f.clientFor(parseImageName(`${reg.host}/app`), Credentials.none());
}

const isTagList = (path: string) => path === "/v2/app/tags/list";

/**
 * A registry that takes every request and never answers, until `release()` (after the test's
 * assertions) lets the held requests have a 503: no answer can beat a deadline however loaded
 * the machine, and no delay timer outlives the test to hold this process open.
 */
function unanswered(): { hook: FaultHook; release: () => void } {
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    hook: async () => {
      await held;
      return { status: 503 };
    },
    release,
  };
}

describe("total deadline of a request", () => {
  test("a tag list dripped a few bytes at a time fails with TIMEOUT at the deadline", async () => {
    const c = client({ requestTimeoutMs: 500 });
    await c.head("latest"); // the ping is done: only the listing meets the drip
    const started = Date.now();
    await withFault(
      reg,
      (req) => (isTagList(req.path) ? { drip: { bytes: 2, everyMs: 50 } } : undefined),
      async () => {
        // undici's idle body timeout never fires: a piece comes every 50 ms.
        await assert.rejects(c.tags(), (err: Error & { code?: string }) => {
          assert.equal(err.code, "TIMEOUT");
          assert.match(err.message, /tag list page 1 timed out after 500 ms/);
          assert.ok(err.message.includes(reg.host), err.message);
          return true;
        });
      },
    );
    const took = Date.now() - started;
    // At the deadline, not before it; late by at most what a loaded machine adds.
    assert.ok(took >= 450 && took < 2500, `took ${took} ms`);
    // Timeouts are not retried: the caller's time is spent.
    assert.equal(reg.requests().filter((r) => isTagList(r.path)).length, 1);
  });

  test("a dripped manifest fails the same way; undripped, the same client works", async () => {
    const c = client({ requestTimeoutMs: 400 });
    assert.equal((await c.head("latest"))?.digest, image.digest);
    await withFault(
      reg,
      (req) =>
        req.method === "GET" && req.path.startsWith("/v2/app/")
          ? { drip: { bytes: 1, everyMs: 40 } }
          : undefined,
      async () => {
        await assert.rejects(c.manifest("latest"), { code: "TIMEOUT", message: /GET manifest/ });
      },
    );
    assert.equal((await c.manifest("latest")).info?.digest, image.digest);
  });

  test("a registry that accepts connections and never answers: TIMEOUT naming the host, at the one deadline", async () => {
    const c = client({ requestTimeoutMs: 400 });
    reg.resetRequests();
    const silent = unanswered();
    try {
      await withFault(reg, silent.hook, async () => {
        const started = Date.now();
        await assert.rejects(c.tags(), (err: Error & { code?: string; host?: string }) => {
          assert.equal(err.code, "TIMEOUT");
          assert.equal(err.host, reg.host);
          assert.match(err.message, /ping \(GET \/v2\/\) timed out after 400 ms/);
          assert.doesNotMatch(err.message, /operation was aborted/);
          return true;
        });
        const took = Date.now() - started;
        // The insecure host's quick HTTPS look fails at once (it speaks plain HTTP); the one
        // plain-HTTP ping then meets the deadline, and that is the answer: the host is not
        // pinged a second time, which took twice the deadline the error names.
        assert.deepEqual(
          reg.requests().map((r) => `${r.method} ${r.path}`),
          ["GET /v2/"],
        );
        assert.ok(took >= 380 && took < 2000, `took ${took} ms`);
      });
    } finally {
      silent.release();
    }
  });

  test("the whole listing has its own deadline, however fast each page is", async () => {
    // Nine pages of 150 ms each: past the listing's 600 ms, each page far inside its own 5 s.
    const c = client({ requestTimeoutMs: 5000, tagListTimeoutMs: 600, tagPageSize: 5 });
    reg.setPagination({});
    try {
      await withFault(
        reg,
        (req) => (isTagList(req.path) ? { delayMs: 150 } : undefined),
        async () => {
          await assert.rejects(c.tags(), (err: Error & { code?: string }) => {
            assert.equal(err.code, "TIMEOUT");
            assert.match(err.message, /tag listing timed out after 600 ms/);
            assert.ok(err.message.includes(`${reg.host}/app`), err.message);
            return true;
          });
        },
      );
    } finally {
      reg.setPagination(false);
    }
    assert.deepEqual((await c.tags()).sort(), [...TAGS, "latest"].sort());
  });

  test("a stalled repository scan ends with TIMEOUT in lastError", async () => {
    const f = new RemoteClientFactory({ insecureHosts: [reg.host], requestTimeoutMs: 500 });
    factories.push(f);
    const store = await openStore("memory:", {});
    const warmer = new Warmer({ store, factory: f, burst: 4 });
    const name = parseImageName(`${reg.host}/app`);
    try {
      await withFault(
        reg,
        (req) => (isTagList(req.path) ? { drip: { bytes: 1, everyMs: 100 } } : undefined),
        async () => {
          const [result] = await warmer.scan([{ name, creds: Credentials.none() }]);
          assert.equal(result?.error?.code, "TIMEOUT", JSON.stringify(result?.error));
          const status = warmer.repositoryStatus(name);
          assert.equal(status?.lastError?.code, "TIMEOUT");
          assert.equal(status?.scanning, false);
        },
      );
    } finally {
      await store.close();
    }
  });
});

describe("the deadline as users set it", () => {
  test("registry.requestTimeout (here from REGSCAN_REQUEST_TIMEOUT) reaches the daemon's clients", async () => {
    const { config } = await loadConfig({
      env: { REGSCAN_REQUEST_TIMEOUT: "500ms", REGSCAN_TAG_LIST_TIMEOUT: "3m" },
    });
    assert.equal(config.registry.requestTimeout, 500);
    assert.equal(config.registry.tagListTimeout, 180_000);
    const daemon = createClientFactory(
      { ...config, registry: { ...config.registry, insecureHosts: [reg.host] } },
      pino({ level: "silent" }),
      new MetricsRegistry(),
    );
    try {
      await withFault(
        reg,
        (req) => (isTagList(req.path) ? { drip: { bytes: 1, everyMs: 100 } } : undefined),
        async () => {
          const c = daemon.factory.clientFor(parseImageName(`${reg.host}/app`), Credentials.none());
          await assert.rejects(c.tags(), { code: "TIMEOUT", message: /after 500 ms/ });
        },
      );
    } finally {
      await daemon.close();
    }
  });

  test("regscan tags --request-timeout: a registry that never answers, one line naming the host", async () => {
    const silent = unanswered();
    try {
      await withFault(reg, silent.hook, async () => {
        const r = await runCli(
          ["tags", "--insecure-host", reg.host, "--request-timeout", "500ms", `${reg.host}/app`],
          { timeoutMs: 30_000 },
        );
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(`^regscan: ping \\(GET /v2/\\) timed out after 500 ms: ${reg.host}\n$`),
        );
      });
    } finally {
      silent.release();
    }
  });
});

describe("connections dropped after the headers", () => {
  test("a tag list reset mid-body is retried and then succeeds", async () => {
    const c = client();
    let cuts = 0;
    await withFault(
      reg,
      (req) => {
        if (!isTagList(req.path) || cuts >= 2) return undefined;
        cuts++;
        return { resetAfterBytes: 30 };
      },
      async () => {
        assert.deepEqual((await c.tags()).sort(), [...TAGS, "latest"].sort());
      },
    );
    assert.equal(cuts, 2);
  });

  test("a manifest and a config blob reset mid-body are retried", async () => {
    const c = client();
    const cut = new Set<string>();
    await withFault(
      reg,
      (req) => {
        const once = req.method === "GET" && !cut.has(req.path) && /manifests|blobs/.test(req.path);
        if (!once) return undefined;
        cut.add(req.path);
        return { resetAfterBytes: 10 };
      },
      async () => {
        assert.equal((await c.manifest("latest")).info?.digest, image.digest);
      },
    );
    assert.ok(
      [...cut].some((p) => p.includes("/blobs/")),
      `the config blob was cut too: ${[...cut]}`,
    );
  });

  test("a body cut every time: a NETWORK error naming the host, after the retries", async () => {
    const c = client({ retry: { maxAttempts: 3, baseDelayMs: 10 } });
    await c.head("latest");
    reg.resetRequests();
    await withFault(
      reg,
      (req) => (isTagList(req.path) ? { resetAfterBytes: 30 } : undefined),
      async () => {
        await assert.rejects(c.tags(), (err: Error & { code?: string; causeCode?: string }) => {
          assert.equal(err.code, "NETWORK");
          assert.ok(err.causeCode !== undefined, "the low-level code is kept as causeCode");
          assert.ok(err.message.includes(reg.host), err.message);
          return true;
        });
      },
    );
    assert.equal(reg.requests().filter((r) => isTagList(r.path)).length, 3);
  });
});
