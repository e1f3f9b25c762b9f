/**
 * The small decisions of the transport chain: which hosts are insecure, which token realms
 * are safe, what a trace line may show of a URL, how long a token is kept, how bodies are
 * bounded, and how the retry layer counts and waits.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NetworkError } from "../../../src/registry/errors.js";
import {
  BodyTooLargeSignal,
  type HttpResponse,
  readBody,
} from "../../../src/registry/http/exchange.js";
import { insecureHostPolicy } from "../../../src/registry/http/insecure-hosts.js";
import { MAX_PAUSE_MS, rateLimitTransport } from "../../../src/registry/http/rate-limit.js";
import { RateLimiters } from "../../../src/registry/http/rate-limiters.js";
import {
  checkRealm,
  isForbiddenAddress,
  isLoopback,
} from "../../../src/registry/http/realm-policy.js";
import { retryTransport } from "../../../src/registry/http/retry.js";
import { TokenCache } from "../../../src/registry/http/token-cache.js";
import { redactUrl } from "../../../src/registry/http/trace.js";

function response(
  status: number,
  body: string | Uint8Array[] = "",
  headers: Record<string, string> = {},
): HttpResponse {
  const chunks = typeof body === "string" ? [Buffer.from(body)] : body;
  return {
    status,
    headers: new Headers(headers),
    url: new URL("https://r.example/"),
    body: (async function* () {
      yield* chunks;
    })(),
  };
}

describe("insecureHostPolicy", () => {
  const insecure = insecureHostPolicy([
    "registry.local",
    "10.0.0.1:5000",
    "[::1]:5001",
    "https://Mixed.Example/v2/",
  ]);
  test("an entry without a port matches every port; with a port only that one", () => {
    assert.equal(insecure("registry.local"), true);
    assert.equal(insecure("registry.local:5000"), true);
    assert.equal(insecure("10.0.0.1:5000"), true);
    assert.equal(insecure("10.0.0.1:5001"), false);
    assert.equal(insecure("10.0.0.1"), false);
    assert.equal(insecure("[::1]:5001"), true);
    assert.equal(insecure("[::1]:5002"), false);
    assert.equal(insecure("mixed.example:443"), true);
    assert.equal(insecure("other.local"), false);
    assert.equal(insecure("sub.registry.local"), false);
  });
  test("an empty list makes nothing insecure", () => {
    assert.equal(insecureHostPolicy([])("127.0.0.1:5000"), false);
  });
});

describe("token realm policy", () => {
  const none = () => false;
  test("https anywhere but link-local and metadata addresses", async () => {
    await checkRealm(new URL("https://auth.example.com/token"), {
      registryHost: "r",
      isInsecure: none,
    }).catch((e: { code?: string }) => {
      // Name resolution is not available in tests; only an unsafe verdict would be wrong.
      assert.notEqual(e.code, "UNSAFE_REALM");
    });
    for (const realm of [
      "https://169.254.169.254/x",
      "https://[fe80::1]/x",
      "https://[fd00:ec2::254]/x",
      "https://metadata.google.internal/x",
      "http://100.100.100.200/x",
      "https://[::ffff:169.254.169.254]/x",
    ]) {
      await assert.rejects(
        checkRealm(new URL(realm), { registryHost: "r", isInsecure: none }),
        { code: "UNSAFE_REALM" },
        realm,
      );
    }
  });
  test("plain http only on loopback or an insecure host", async () => {
    await checkRealm(new URL("http://127.0.0.1:9/token"), { registryHost: "r", isInsecure: none });
    await checkRealm(new URL("http://localhost:9/token"), { registryHost: "r", isInsecure: none });
    await checkRealm(new URL("http://[::1]:9/token"), { registryHost: "r", isInsecure: none });
    await assert.rejects(
      checkRealm(new URL("http://10.1.1.1/token"), { registryHost: "r", isInsecure: none }),
      {
        code: "UNSAFE_REALM",
      },
    );
    await checkRealm(new URL("http://10.1.1.1/token"), {
      registryHost: "r",
      isInsecure: insecureHostPolicy(["10.1.1.1"]),
    });
    await assert.rejects(
      checkRealm(new URL("ftp://127.0.0.1/token"), { registryHost: "r", isInsecure: none }),
      {
        code: "UNSAFE_REALM",
      },
    );
  });
  test("address classification", () => {
    assert.equal(isLoopback("127.1.2.3"), true);
    assert.equal(isLoopback("[::1]"), true);
    assert.equal(isLoopback("128.0.0.1"), false);
    assert.equal(isLoopback(new URL("http://[::ffff:127.0.0.1]/").hostname), true);
    assert.equal(isForbiddenAddress("169.254.0.1"), true);
    assert.equal(isForbiddenAddress("febf::1"), true);
    assert.equal(isForbiddenAddress("fec0::1"), false);
    assert.equal(isForbiddenAddress("10.0.0.1"), false);
  });
});

describe("redactUrl", () => {
  test("keeps the registry's harmless query values, replaces the rest, drops user info", () => {
    const shown = redactUrl(
      new URL(
        "https://user:pw@s3.example/b?X-Amz-Signature=abc&n=100&last=t9&token=tok&scope=repository:a:pull",
      ),
    );
    assert.equal(
      shown,
      "https://s3.example/b?X-Amz-Signature=REDACTED&n=100&last=t9&token=REDACTED&scope=repository%3Aa%3Apull",
    );
  });
});

describe("TokenCache", () => {
  test("kept until shortly before expiry; concurrent callers share one fetch; invalidate drops only the refused token", async () => {
    let now = 1_000_000;
    const cache = new TokenCache({ now: () => now });
    let fetches = 0;
    const fetch = async () => ({ token: `t${++fetches}`, expiresInMs: 300_000 });
    const key = TokenCache.key({
      realm: "https://auth/token",
      service: "svc",
      scope: "repository:a:pull",
    });
    const [a, b] = await Promise.all([cache.get(key, fetch), cache.get(key, fetch)]);
    assert.equal(a.token, "t1");
    assert.equal(b.token, "t1");
    now += 269_000;
    assert.equal((await cache.get(key, fetch)).token, "t1");
    now += 2_000; // 271 s: inside the 30 s margin
    assert.equal((await cache.get(key, fetch)).token, "t2");
    cache.invalidate(key, "t1");
    assert.equal((await cache.get(key, fetch)).token, "t2");
    cache.invalidate(key, "t2");
    assert.equal((await cache.get(key, fetch)).token, "t3");
  });
  test("expired tokens are dropped as new ones come, not kept until the table is full", async () => {
    let now = 0;
    const cache = new TokenCache({ now: () => now });
    const fetch = async () => ({ token: "t", expiresInMs: 300_000 });
    const key = (i: number) =>
      TokenCache.key({ realm: "https://auth/token", scope: `repository:r${i}:pull` });
    for (let i = 0; i < 1_000; i++) {
      now = i * 1_000;
      await cache.get(key(i), fetch);
    }
    // Each token is usable for 270 s (300 s less its margin): the last 270 remain.
    assert.equal(cache.size, 270);
    assert.equal(cache.has(key(999)), true);
    assert.equal(cache.has(key(700)), false);
  });
  test("keys differ by credential without containing it", () => {
    const cred = (password: string) => ({
      host: "h",
      username: "u",
      password,
      identityToken: undefined,
      registryToken: undefined,
      provenance: "test",
    });
    const k1 = TokenCache.key({
      realm: "r",
      service: "s",
      scope: "repository:a:pull",
      cred: cred("secret-one"),
    });
    const k2 = TokenCache.key({
      realm: "r",
      service: "s",
      scope: "repository:a:pull",
      cred: cred("secret-two"),
    });
    assert.notEqual(k1, k2);
    assert.ok(!k1.includes("secret-one"));
  });
});

describe("readBody", () => {
  test("refuses a declared or streamed body over the limit", async () => {
    assert.equal((await readBody(response(200, "hello"), 5)).toString(), "hello");
    await assert.rejects(
      readBody(response(200, "x", { "content-length": "999" }), 10),
      BodyTooLargeSignal,
    );
    const endless = [Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4)];
    await assert.rejects(readBody(response(200, endless), 10), BodyTooLargeSignal);
  });
});

describe("retryTransport", () => {
  test("bounded in attempts; returns the last answer", async () => {
    let calls = 0;
    const t = retryTransport(
      async () => {
        calls++;
        return response(503);
      },
      { maxAttempts: 3, baseDelayMs: 1 },
    );
    const res = await t({ method: "GET", url: new URL("https://r.example/") });
    assert.equal(res.status, 503);
    assert.equal(calls, 3);
  });
  test("bounded in total time", async () => {
    let calls = 0;
    const t = retryTransport(
      async () => {
        calls++;
        return response(502);
      },
      { maxAttempts: 100, baseDelayMs: 40, maxTotalMs: 100 },
    );
    const started = Date.now();
    await t({ method: "GET", url: new URL("https://r.example/") });
    assert.ok(Date.now() - started < 1_000);
    assert.ok(calls < 6, `calls ${calls}`);
  });
  test("onRetry sees the method and URL only, never the headers that carry credentials", async () => {
    const seen: unknown[] = [];
    let calls = 0;
    const t = retryTransport(async () => (++calls === 1 ? response(503) : response(200)), {
      baseDelayMs: 1,
      onRetry: (info) => seen.push(info),
    });
    const url = new URL("https://r.example/v2/app/tags/list");
    await t({ method: "GET", url, headers: { authorization: "Bearer sekrit-token-9" } });
    assert.equal(seen.length, 1);
    assert.ok(!JSON.stringify(seen).includes("sekrit-token-9"));
    assert.deepEqual((seen[0] as { req: unknown }).req, { method: "GET", url });
  });
  test("connection resets are retried, other failures and 4xx are not", async () => {
    let calls = 0;
    const reset = retryTransport(
      async () => {
        calls++;
        if (calls < 3) throw new NetworkError({ causeCode: "ECONNRESET", host: "r" });
        return response(200);
      },
      { baseDelayMs: 1 },
    );
    assert.equal((await reset({ method: "GET", url: new URL("https://r.example/") })).status, 200);
    assert.equal(calls, 3);
    calls = 0;
    const tls = retryTransport(
      async () => {
        calls++;
        throw new NetworkError({ causeCode: "DEPTH_ZERO_SELF_SIGNED_CERT", host: "r" });
      },
      { baseDelayMs: 1 },
    );
    await assert.rejects(tls({ method: "GET", url: new URL("https://r.example/") }), {
      code: "NETWORK",
    });
    assert.equal(calls, 1);
    calls = 0;
    const notFound = retryTransport(async () => {
      calls++;
      return response(404);
    });
    assert.equal(
      (await notFound({ method: "GET", url: new URL("https://r.example/") })).status,
      404,
    );
    assert.equal(calls, 1);
  });
});

describe("rateLimitTransport", () => {
  test("a Retry-After pauses the host, but never for longer than MAX_PAUSE_MS", async () => {
    const now = 1_000_000;
    const limiters = new RateLimiters();
    let retryAfter = "5";
    const t = rateLimitTransport(
      async () => response(429, "", { "retry-after": retryAfter }),
      limiters,
      { now: () => now },
    );
    const req = { method: "GET" as const, url: new URL("https://r.example/v2/") };
    await t(req);
    assert.equal(limiters.state("r.example").pausedUntil, now + 5_000);
    retryAfter = "86400";
    await t(req);
    assert.equal(limiters.state("r.example").pausedUntil, now + MAX_PAUSE_MS);
    assert.equal(limiters.rate("r.example"), limiters.rps / 2, "halved once for this client");
  });
});
