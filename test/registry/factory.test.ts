/**
 * RemoteClientFactory's rate limiting and retries against the real registry, with faults
 * injected by the recording proxy: `429` + `Retry-After`, the limiter halving once per
 * client, `succeed()` raising it only after the cool-down (fake clock), `5xx` and dropped
 * connections retried, aborts honoured, Docker Hub's quota headers, request metrics.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Registry as PromRegistry } from "prom-client";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import {
  RemoteClientFactory,
  type RemoteClientFactoryOptions,
} from "../../src/registry/factory.js";
import { type Clock, RateLimiters, systemClock } from "../../src/registry/http/rate-limiters.js";
import { withFault } from "../support/faults.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";

let reg: RegistryHandle;
const factories: RemoteClientFactory[] = [];

before(async () => {
  reg = await startRegistry({ mode: "anonymous" });
  const b = new ImageBuilder(reg);
  await b.pushImage("app", ["v1"]);
  await b.close();
});

after(async () => {
  await Promise.all(factories.map((f) => f.close()));
  await reg.stop();
});

function factory(opts: RemoteClientFactoryOptions = {}): RemoteClientFactory {
  const f = new RemoteClientFactory({ insecureHosts: [reg.host], ...opts });
  factories.push(f);
  return f;
}

/** A clock that runs with real time plus an offset the test moves forward. */
function fakeClock(): Clock & { advance(ms: number): void } {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    sleep: (ms, signal) => systemClock.sleep(ms, signal),
    advance(ms) {
      offset += ms;
    },
  };
}

const name = () => parseImageName(`${reg.host}/app`);
const tagListStatuses = () =>
  reg
    .requests()
    .filter((r) => r.path === "/v2/app/tags/list")
    .map((r) => r.status);

function tooManyOnce(times: number, retryAfter = "1") {
  let left = times;
  return (req: { path: string }) => {
    if (req.path !== "/v2/app/tags/list" || left <= 0) return undefined;
    left--;
    return {
      status: 429,
      headers: { "retry-after": retryAfter },
      body: { errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] },
    };
  };
}

test("a 429 with Retry-After: 1 is waited for and retried; the rate halves once per client; succeed() waits out the cool-down", async () => {
  const clock = fakeClock();
  const limiters = new RateLimiters({ rps: 10, burst: 10, clock });
  const f = factory({ limiters });
  const client = f.clientFor(name(), Credentials.none());
  await client.tags(); // the ping is out of the way
  reg.resetRequests();
  await withFault(reg, tooManyOnce(1), async () => {
    const started = Date.now();
    assert.deepEqual(await client.tags(), ["v1"]);
    assert.ok(Date.now() - started >= 950, "waited for Retry-After");
    assert.deepEqual(tagListStatuses(), [429, 200]);
    assert.equal(limiters.state(reg.host).rate, 5, "halved");

    reg.setFault(tooManyOnce(1));
    await client.tags();
    assert.equal(limiters.state(reg.host).rate, 5, "the same client halves a host once");

    reg.setFault(tooManyOnce(1));
    await f.clientFor(name(), Credentials.none()).tags();
    assert.equal(limiters.state(reg.host).rate, 2.5, "another client halves it again");
  });

  f.succeed(name());
  assert.equal(limiters.state(reg.host).rate, 2.5, "no rise right after a back-off");
  clock.advance(19 * 60_000);
  f.succeed(name());
  assert.equal(limiters.state(reg.host).rate, 2.5, "no rise within 20 minutes");
  clock.advance(2 * 60_000);
  f.succeed(name());
  assert.equal(limiters.state(reg.host).rate, 3.75, "1.5x after the cool-down");
  for (let i = 0; i < 10; i++) f.succeed(name());
  assert.equal(limiters.state(reg.host).rate, 10, "never above rps");
});

test("429s beyond the retry bound: TOO_MANY_REQUESTS with the Retry-After it got", async () => {
  const f = factory({ retry: { maxAttempts: 2 } });
  const client = f.clientFor(name(), Credentials.none());
  await withFault(reg, tooManyOnce(5), async () => {
    await assert.rejects(
      client.tags(),
      (err: { code?: string; retryAfterMs?: number; status?: number }) => {
        assert.equal(err.code, "TOO_MANY_REQUESTS");
        assert.equal(err.retryAfterMs, 1000);
        assert.equal(err.status, 429);
        return true;
      },
    );
  });
});

test("a Retry-After longer than the bound is not waited for", async () => {
  const f = factory({ retry: { maxRetryAfterMs: 5_000 } });
  const client = f.clientFor(name(), Credentials.none());
  await client.tags();
  await withFault(reg, tooManyOnce(1, "3600"), async () => {
    const started = Date.now();
    await assert.rejects(client.tags(), { code: "TOO_MANY_REQUESTS", retryAfterMs: 3_600_000 });
    assert.ok(Date.now() - started < 2_000);
  });
});

test("503, 502 and a dropped connection are retried with back-off", async () => {
  const f = factory({ retry: { baseDelayMs: 20 } });
  const client = f.clientFor(name(), Credentials.none());
  await client.tags();
  reg.resetRequests();
  const faults = [{ destroy: true }, { status: 503 }, { status: 502 }];
  await withFault(
    reg,
    (req) => (req.path === "/v2/app/tags/list" ? faults.shift() : undefined),
    async () => {
      assert.deepEqual(await client.tags(), ["v1"]);
      assert.equal(faults.length, 0);
      assert.equal(tagListStatuses().at(-1), 200);
    },
  );
});

test("the caller's AbortSignal stops a Retry-After wait at once", async () => {
  const f = factory();
  const client = f.clientFor(name(), Credentials.none());
  await client.tags();
  await withFault(reg, tooManyOnce(1, "30"), async () => {
    const started = Date.now();
    await assert.rejects(client.tags({ signal: AbortSignal.timeout(200) }), {
      name: "TimeoutError",
    });
    assert.ok(Date.now() - started < 3_000, "did not wait 30 s");
  });
});

test("Docker Hub's ratelimit headers make a pull budget: a manifest GET at the floor is not sent; HEAD and tag lists go on", async () => {
  const limiters = new RateLimiters({ rps: 10, burst: 10 });
  const f = factory({ limiters });
  const client = f.clientFor(name(), Credentials.none());
  await client.tags();
  await withFault(
    reg,
    (req) =>
      req.path === "/v2/app/manifests/v1" && req.method === "HEAD"
        ? {
            status: 200,
            headers: {
              "ratelimit-limit": "100;w=21600",
              "ratelimit-remaining": "20;w=21600",
              "docker-content-digest": `sha256:${"a".repeat(64)}`,
              "content-type": "application/vnd.oci.image.manifest.v1+json",
            },
          }
        : undefined,
    async () => {
      await client.head("v1");
      assert.equal(limiters.state(reg.host).pulls?.remaining, 20);
      reg.resetRequests();
      await assert.rejects(client.manifest("v1"), { code: "TOO_MANY_REQUESTS" });
      assert.deepEqual(
        reg.requests().filter((r) => r.method === "GET" && r.path.includes("/manifests/")),
        [],
        "no pull was sent",
      );
      await client.tags();
      await client.head("v1");
    },
  );
});

test("HTTP requests are counted by host, method and status on the registry given", async () => {
  const metrics = new PromRegistry();
  const observed: string[] = [];
  const f = factory({ metrics, observe: (r) => observed.push(`${r.method} ${r.status}`) });
  const client = f.clientFor(name(), Credentials.none());
  await client.tags();
  await client.head("v1");
  const text = await metrics.metrics();
  assert.match(
    text,
    new RegExp(`regscan_http_requests_total\\{host="${reg.host}",method="HEAD",status="200"\\} 1`),
  );
  assert.match(text, /method="GET",status="200"\} 2/);
  assert.ok(observed.includes("HEAD 200"));
});

test("request budgets are metrics: budget, rate, requests, waits, saturation and the pull quota per host", async () => {
  const metrics = new PromRegistry();
  const limiters = new RateLimiters({ budgets: { [reg.host]: { rps: 50, burst: 4 } } });
  const f = factory({ metrics, limiters });
  const client = f.clientFor(name(), Credentials.none());
  await client.tags();
  await client.head("v1");
  limiters.observeQuota(reg.host, 70, 100, 21600);
  const text = await metrics.metrics();
  const value = (metric: string) =>
    Number(new RegExp(`^${metric}\\{host="${reg.host}"\\} (\\S+)$`, "m").exec(text)?.[1]);
  assert.equal(value("regscan_registry_budget_rps"), 50);
  assert.equal(value("regscan_registry_budget_burst"), 4);
  assert.equal(value("regscan_registry_rate_rps"), 50 * 0.99);
  assert.equal(value("regscan_registry_budget_saturated"), 0);
  assert.equal(value("regscan_registry_pull_quota_limit"), 100);
  assert.equal(value("regscan_registry_pull_quota_remaining"), 70);
  // Every request the pipeline sent went through the budget (the ping, the list, the HEAD).
  const sent = reg.requests().filter((r) => r.status !== 0).length;
  assert.ok(value("regscan_registry_budget_requests_total") >= 3);
  assert.ok(value("regscan_registry_budget_requests_total") <= sent + 3);
  assert.ok(value("regscan_registry_budget_wait_seconds_total") >= 0);
  assert.ok(value("regscan_registry_demand_rps") > 0);
  // Both answers were read: no request holds a connection.
  assert.equal(value("regscan_registry_requests_in_flight"), 0);
});

test("close() drops a host's first ping still waiting for a budget that no longer comes", async () => {
  // A stopping daemon's census gives this replica no share of any budget: a ping waiting for
  // its turn then waited in 10 s naps for hours, and kept the process alive after stop.
  const limiters = new RateLimiters({ rps: 10, burst: 1 });
  limiters.setShare(0);
  const f = new RemoteClientFactory({ insecureHosts: [reg.host], limiters });
  const listing = f
    .clientFor(name(), Credentials.none())
    .tags({ signal: AbortSignal.timeout(60_000) });
  const outcome = listing.then(
    () => "listed",
    (err: Error & { code?: string }) => err.code,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  const t0 = performance.now();
  await f.close();
  assert.equal(await outcome, "CLIENT_CLOSED");
  assert.ok(performance.now() - t0 < 2_000, "dropped at once");
});
