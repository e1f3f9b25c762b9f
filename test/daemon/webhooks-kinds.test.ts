/**
 * Issue 12 through a real `regscan serve` and registry: receivers whose senders cannot run
 * here (Docker Hub, GitHub) posted their recorded sample bodies. A valid secret refreshes the
 * named tag of the watched repository (the sample names docker.io / ghcr.io; regscan watches
 * the same path on its registry, matched by path); a wrong secret, a wrong signature or a
 * 2 MiB body refresh nothing; no secret shows in the log, the metrics or an answer.
 */
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { dockerHubPush, githubPackagePublished } from "../server/webhooks/samples.js";
import { ImageBuilder } from "../support/image-builder.js";
import { cleanupAll } from "../support/processes.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import { type ServeProcess, startServe } from "./serve-process.js";
import { countRequests, servedDigest, until } from "./webhook-support.js";

after(cleanupAll);

const HUB_SECRET = `hub${randomBytes(12).toString("hex")}`;
const GITHUB_SECRET = `gh-${randomBytes(12).toString("hex")}`;
const API_TOKEN = `api-${randomBytes(12).toString("hex")}`;
const HUB_REPO = "svendowideit/testhook";
const GH_REPO = "octo-org/app";

describe("webhook kinds through regscan serve", () => {
  let registry: RegistryHandle;
  let serve: ServeProcess;
  let builder: ImageBuilder;
  const auth = { authorization: `Bearer ${API_TOKEN}` };

  const digestOf = (repo: string, tag: string) =>
    servedDigest(serve, `${registry.host}/${repo}:${tag}`, auth);
  const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${serve.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
      signal: AbortSignal.timeout(10_000),
    });

  before(async () => {
    registry = await startRegistry();
    builder = new ImageBuilder(registry);
    await builder.pushImage(HUB_REPO, ["latest"]);
    await builder.pushImage(GH_REPO, ["v1.4.2"]);
    serve = await startServe(
      [
        "--image",
        `${registry.host}/${HUB_REPO}`,
        "--image",
        `${registry.host}/${GH_REPO}`,
        "--insecure-host",
        registry.host,
        "--cache",
        "memory:",
        "--interval",
        "1h",
        "--api-token",
        API_TOKEN,
        "--webhook",
        "dockerhub",
        "--webhook",
        "github",
        "--webhook-secret",
        "dockerhub=env:REGSCAN_TEST_HUB",
        "--webhook-secret",
        "github=env:REGSCAN_TEST_GH",
        "--log-level",
        "debug",
      ],
      { REGSCAN_TEST_HUB: HUB_SECRET, REGSCAN_TEST_GH: GITHUB_SECRET },
    );
    for (const [repo, tag] of [
      [HUB_REPO, "latest"],
      [GH_REPO, "v1.4.2"],
    ] as const) {
      await until(async () => (await digestOf(repo, tag)) !== undefined, repo, 30_000);
    }
  });

  after(async () => {
    await builder?.close();
    await serve?.stop();
    await registry?.stop();
  });

  test("Docker Hub: the secret in the path refreshes the pushed tag; a wrong one refreshes nothing", async () => {
    const moved = await builder.pushImage(HUB_REPO, ["latest"]);
    registry.resetRequests();
    const body = JSON.stringify(dockerHubPush);
    const wrong = await post(`/v1/webhooks/dockerhub/${HUB_SECRET}x`, body);
    assert.equal(wrong.status, 401);
    assert.equal((await post("/v1/webhooks/dockerhub", body)).status, 404);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(registry.requests().length, 0, "no refresh without the secret");
    const res = await post(`/v1/webhooks/dockerhub/${HUB_SECRET}`, body);
    assert.equal(res.status, 202);
    assert.equal(((await res.json()) as { refreshed: number }).refreshed, 1);
    await until(async () => (await digestOf(HUB_REPO, "latest")) === moved.digest, "moved", 5_000);
    assert.deepEqual([...countRequests(registry).heads], [["latest", 1]]);
  });

  test("GitHub: a valid signature refreshes the tag; a wrong, missing or stale one does not", async () => {
    const moved = await builder.pushImage(GH_REPO, ["v1.4.2"]);
    await new Promise((r) => setTimeout(r, 300));
    registry.resetRequests();
    const body = JSON.stringify(githubPackagePublished);
    const sign = (text: string, secret = GITHUB_SECRET) =>
      `sha256=${createHmac("sha256", secret).update(text).digest("hex")}`;
    const headers = { "x-github-event": "package" };
    for (const bad of [
      { ...headers, "x-hub-signature-256": sign(body, "not-the-secret") },
      headers,
      { ...headers, "x-hub-signature-256": sign(`${body} `) },
    ]) {
      assert.equal((await post("/v1/webhooks/github", body, bad)).status, 401);
    }
    const truncated = body.slice(0, 100);
    const cut = await post("/v1/webhooks/github", truncated, {
      ...headers,
      "x-hub-signature-256": sign(truncated),
    });
    assert.equal(cut.status, 400);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(registry.requests().length, 0, "no refresh for refused bodies");
    const ok = await post("/v1/webhooks/github", body, {
      ...headers,
      "x-hub-signature-256": sign(body),
    });
    assert.equal(ok.status, 202);
    await until(async () => (await digestOf(GH_REPO, "v1.4.2")) === moved.digest, "moved", 5_000);
    assert.deepEqual([...countRequests(registry).heads], [["v1.4.2", 1]]);
  });

  test("a 2 MiB body is 413 and its connection closed", async () => {
    // Its headers alone: the answer comes before any of the body is read, and a body written
    // meanwhile raced the close (EPIPE on the client, sometimes before the answer was parsed).
    // Bodies read past the bound are covered in test/server/webhook-route.test.ts.
    const { status, connection } = await new Promise<{
      status: number | undefined;
      connection: string | undefined;
    }>((resolve, reject) => {
      const req = request(
        `${serve.url}/v1/webhooks/github`,
        {
          method: "POST",
          headers: { "content-type": "application/json", "content-length": 2 * 1024 * 1024 },
        },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode, connection: res.headers.connection });
          req.destroy();
        },
      );
      req.on("error", reject);
      req.flushHeaders();
    });
    assert.equal(status, 413);
    assert.equal(connection, "close");
  });

  test("no secret in the log, the metrics or the answers", async () => {
    const metrics = await (await fetch(`${serve.url}/metrics`)).text();
    assert.match(metrics, /regscan_webhooks_total\{kind="dockerhub",result="unauthorized"\} 1/);
    assert.match(metrics, /regscan_webhooks_total\{kind="github",result="accepted"\} 1/);
    const answers = [
      await (await post(`/v1/webhooks/dockerhub/${HUB_SECRET}`, "not json")).text(),
      await (await post(`/v1/webhooks/nosuchkind/${HUB_SECRET}`, "{}")).text(),
      await (await fetch(`${serve.url}/v1/webhooks/dockerhub/${HUB_SECRET}`)).text(),
    ];
    for (const secret of [HUB_SECRET, GITHUB_SECRET, API_TOKEN]) {
      assert.ok(!serve.output().includes(secret), "the log holds a secret");
      assert.ok(!metrics.includes(secret), "the metrics hold a secret");
      for (const a of answers) assert.ok(!a.includes(secret), `an answer holds a secret: ${a}`);
    }
  });
});
