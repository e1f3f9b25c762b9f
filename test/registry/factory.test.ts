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

test("Docker Hub's ratelimit-remaining slows the host before a 429", async () => {
  const limiters = new RateLimiters({ rps: 10, burst: 10 });
  const f = factory({ limiters });
  const client = f.clientFor(name(), Credentials.none());
  await client.tags();
  await withFault(
    reg,
    (req) =>
      req.path === "/v2/app/tags/list"
        ? {
            status: 200,
            headers: { "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "2;w=21600" },
            body: { name: "app", tags: ["v1"] },
          }
        : undefined,
    async () => {
      await client.tags();
      const state = limiters.state(reg.host);
      assert.ok(
        state.quotaCap !== undefined && state.effectiveRate < 10,
        `capped: ${JSON.stringify(state)}`,
      );
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
