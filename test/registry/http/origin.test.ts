/**
 * The origin layer: a registry path goes to its host's base URL (learnt by one ping, shared
 * by concurrent requests, forgotten when it fails), absolute URLs go by unchanged, and every
 * request carries its host's TLS policy down to the dispatcher. An insecure host's ping tries
 * each scheme once at most (https quickly, then plain http the retried way): a failure there is
 * the answer, not a reason to ping both again.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NetworkError, TimeoutError } from "../../../src/registry/errors.js";
import {
  type HttpRequest,
  type HttpResponse,
  RegistryPath,
} from "../../../src/registry/http/exchange.js";
import { Origins } from "../../../src/registry/http/origin.js";
import { PIPELINE_LAYERS } from "../../../src/registry/http/pipeline.js";

function answer(status: number, url: URL, headers: Record<string, string> = {}): HttpResponse {
  return {
    status,
    headers: new Headers(headers),
    url,
    body: (async function* () {})(),
  };
}

/** A fake host: `/v2/` answers the ping with `pingStatus`; everything else 200. */
function fakeHost(pingStatus: () => number) {
  const pings: string[] = [];
  const transport = async (req: HttpRequest): Promise<HttpResponse> => {
    assert.ok(req.url instanceof URL, "pings are absolute");
    pings.push(req.url.href);
    return answer(pingStatus(), req.url, {
      "www-authenticate": 'Bearer realm="https://auth.example/token",service="reg"',
    });
  };
  return { pings, transport };
}

/** The origin layer over `host`, on a next layer that answers 200 and records what reached it. */
function originLayer(host: ReturnType<typeof fakeHost>, insecureHosts: string[] = []) {
  const origins = new Origins({ insecureHosts, ping: host.transport, probe: host.transport });
  const sent: HttpRequest[] = [];
  const chain = origins.layer(async (req) => {
    sent.push(req);
    return answer(200, req.url as URL);
  });
  return { origins, sent, chain };
}

describe("the origin layer", () => {
  test("resolves registry paths against the host's policy, pinging once for all", async () => {
    const host = fakeHost(() => 401);
    const { origins, sent, chain } = originLayer(host);
    const path = new RegistryPath("reg.example", "/v2/app/tags/list?n=5");
    await Promise.all([
      chain({ method: "GET", url: path }),
      chain({ method: "GET", url: path }),
      chain({ method: "GET", url: new URL("https://auth.example/token?scope=x") }),
    ]);
    assert.deepEqual(host.pings, ["https://reg.example/v2/"]);
    assert.deepEqual(sent.map((r) => `${(r.url as URL).href} ${r.skipTlsVerify}`).sort(), [
      "https://auth.example/token?scope=x false",
      "https://reg.example/v2/app/tags/list?n=5 false",
      "https://reg.example/v2/app/tags/list?n=5 false",
    ]);
    const policy = await origins.policy("reg.example");
    assert.deepEqual(policy.challenge, {
      scheme: "bearer",
      realm: "https://auth.example/token",
      service: "reg",
    });
  });

  test("a failed ping is forgotten; the next request pings again", async () => {
    let status = 503;
    const host = fakeHost(() => status);
    const { chain } = originLayer(host);
    const path = new RegistryPath("reg.example", "/v2/app/manifests/v1");
    await assert.rejects(chain({ method: "HEAD", url: path }), { code: "REGISTRY_ERROR" });
    status = 200;
    assert.equal((await chain({ method: "HEAD", url: path })).status, 200);
    assert.equal(host.pings.length, 2);
  });

  test("an insecure host's requests skip TLS verification; no other host's do", async () => {
    const host = fakeHost(() => 200);
    const { sent, chain } = originLayer(host, ["local.test:5000"]);
    await chain({ method: "GET", url: new RegistryPath("local.test:5000", "/v2/x/tags/list") });
    await chain({ method: "GET", url: new URL("https://local.test:5001/v2/") });
    assert.deepEqual(
      sent.map((r) => r.skipTlsVerify),
      [true, false],
    );
  });
});

/**
 * An insecure host behind two fake transports that record what went which way: `probe` (the
 * quick https look, without retries) and `ping` (the retried way). `answers` tells, per
 * scheme, the status the host answers or the error it fails with.
 */
function insecureHost(answers: { https: number | Error; http: number | Error }) {
  const sent: string[] = [];
  const via =
    (route: string) =>
    async (req: HttpRequest): Promise<HttpResponse> => {
      assert.ok(req.url instanceof URL);
      sent.push(`${route} ${req.url.href}`);
      const said = req.url.protocol === "https:" ? answers.https : answers.http;
      if (said instanceof Error) throw said;
      return answer(said, req.url);
    };
  const origins = new Origins({
    insecureHosts: ["local.test:5000"],
    ping: via("ping"),
    probe: via("probe"),
  });
  return { sent, policy: () => origins.policy("local.test:5000") };
}

const refused = () =>
  new NetworkError({ host: "local.test:5000", causeCode: "ECONNREFUSED", message: "refused" });

describe("an insecure host's ping", () => {
  test("https failing and plain http failing: http's error, each scheme tried once", async () => {
    const host = insecureHost({ https: refused(), http: refused() });
    await assert.rejects(host.policy(), { code: "NETWORK", causeCode: "ECONNREFUSED" });
    assert.deepEqual(host.sent, [
      "probe https://local.test:5000/v2/",
      "ping http://local.test:5000/v2/",
    ]);
  });

  test("a plain-http timeout is the answer; https is not pinged again", async () => {
    const timeout = new TimeoutError({ host: "local.test:5000", timeoutMs: 400 });
    const host = insecureHost({ https: refused(), http: timeout });
    await assert.rejects(host.policy(), (err) => err === timeout);
    assert.deepEqual(host.sent, [
      "probe https://local.test:5000/v2/",
      "ping http://local.test:5000/v2/",
    ]);
  });

  test("an https timeout is the answer; plain http is not tried", async () => {
    const host = insecureHost({ https: new TimeoutError({ timeoutMs: 400 }), http: 200 });
    await assert.rejects(host.policy(), { code: "TIMEOUT" });
    assert.deepEqual(host.sent, ["probe https://local.test:5000/v2/"]);
  });

  test("plain http answering like a registry: its policy", async () => {
    const host = insecureHost({ https: refused(), http: 200 });
    assert.equal((await host.policy()).base.href, "http://local.test:5000/");
  });

  test("plain http answering otherwise (a TLS server's 400): https again, the retried way", async () => {
    let https: number | Error = refused();
    const answers = {
      get https() {
        // The https look failed only for now.
        const now = https;
        https = 401;
        return now;
      },
      http: 400,
    };
    const host = insecureHost(answers);
    assert.equal((await host.policy()).base.href, "https://local.test:5000/");
    assert.deepEqual(host.sent, [
      "probe https://local.test:5000/v2/",
      "ping http://local.test:5000/v2/",
      "ping https://local.test:5000/v2/",
    ]);
  });

  test("https asking to be asked again (503): retried over https, never plain http", async () => {
    const host = insecureHost({ https: 503, http: 200 });
    await assert.rejects(host.policy(), { code: "REGISTRY_ERROR", status: 503 });
    assert.deepEqual(host.sent, [
      "probe https://local.test:5000/v2/",
      "ping https://local.test:5000/v2/",
    ]);
  });
});

test("the pipeline's layers, outermost first, as DESIGN.md lists them", () => {
  assert.deepEqual(
    [...PIPELINE_LAYERS],
    ["auth", "trace", "retry", "rate limit", "observe", "origin"],
  );
});
