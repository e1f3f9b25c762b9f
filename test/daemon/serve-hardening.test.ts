/**
 * `regscan serve` against a real registry, under the abuse a hardening audit tried: a tag
 * named `__proto__`, a stream of unauthenticated refresh requests, and one client opening
 * more connections than its share.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { ImageBuilder } from "../support/image-builder.js";
import { cleanupAll, waitFor } from "../support/processes.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import { type ServeProcess, startServe } from "./serve-process.js";

after(cleanupAll);

const TAGS = Array.from({ length: 20 }, (_, i) => `v${i}`);

describe("regscan serve hardening", () => {
  let registry: RegistryHandle;
  let serve: ServeProcess;
  let repo: string;
  let port: number;

  before(async () => {
    registry = await startRegistry();
    const builder = new ImageBuilder(registry);
    await builder.pushImage("team/app", ["__proto__", "constructor", ...TAGS]);
    await builder.close();
    repo = `${registry.host}/team/app`;
    serve = await startServe([
      "--image",
      repo,
      "--insecure-host",
      registry.host,
      "--cache",
      "memory:",
      "--refresh-min-gap",
      // Short, so that the refresh requests below span a few gaps in a second or so.
      "1s",
      "--max-connections",
      "16",
      "--max-connections-per-client",
      "8",
    ]);
    port = Number(new URL(serve.url).port);
    await waitFor(async () => (await serve.fetchJson(`/v1/repositories/${repo}`)).status === 200, {
      what: "the first scan",
      timeoutMs: 30_000,
      intervalMs: 200,
    });
  });
  after(async () => {
    await serve?.stop();
    await registry?.stop();
  });

  test("a tag named __proto__ is in the repository's images like any other", async () => {
    const { body } = await serve.fetchJson(`/v1/repositories/${repo}`);
    const tags = body.tags as string[];
    assert.ok(tags.includes("__proto__"));
    const images = new Map(Object.entries(body.images as Record<string, { ref: string }>));
    // Object.entries sees only own keys: a __proto__ set as a prototype would be missing.
    assert.equal(images.get("__proto__")?.ref, `${repo}:__proto__`);
    assert.equal(images.get("constructor")?.ref, `${repo}:constructor`);
    assert.equal(images.size, TAGS.length + 2);
    const one = await serve.fetchJson(`/v1/images/${repo}:__proto__`);
    assert.equal(one.status, 200);
    assert.equal(one.body.ref, `${repo}:__proto__`);
  });

  test("30 refresh requests spread over 1 s cost one refresh per minimum gap", async () => {
    registry.resetRequests();
    const started = Date.now();
    const outcomes: string[] = [];
    for (let i = 0; i < 30; i++) {
      const a = await serve.fetchJson(`/v1/repositories/${repo}/refresh`, { method: "POST" });
      assert.equal(a.status, 202);
      outcomes.push(String(a.body.refresh));
      await new Promise((r) => setTimeout(r, 33));
    }
    const span = Date.now() - started;
    // Let the last queued refresh (at most one) run after its gap, and 1.5 s more.
    await new Promise((r) => setTimeout(r, 2_500));
    const heads = registry
      .requests()
      .filter((r) => r.method === "HEAD" && r.path.includes("/manifests/")).length;
    const tagCount = TAGS.length + 2;
    console.log(
      `# 30 POST .../refresh over ${span} ms: ${heads} HEADs for ${tagCount} tags; outcomes: ${[...new Set(outcomes)].join(", ")}`,
    );
    // One refresh at once, then one per 1 s gap (each checks every tag with HEAD); without
    // coalescing nearly every request starts a refresh of its own.
    const allowed = 1 + Math.ceil(span / 1_000);
    assert.ok(heads >= tagCount, `the first refresh checked every tag (${heads})`);
    assert.ok(heads <= allowed * tagCount, `${heads} HEADs: more than ${allowed} refreshes ran`);
    assert.ok(outcomes.includes("coalesced"));
  });

  test("a scan that finds a new tag is logged at info", async () => {
    const builder = new ImageBuilder(registry);
    await builder.pushImage("team/app", ["fresh"]);
    await builder.close();
    await serve.fetchJson(`/v1/repositories/${repo}/refresh`, { method: "POST" });
    await waitFor(async () => /INFO\s+scan found 1 new and 0 moved/.test(serve.output()), {
      what: "the scan's info line",
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    assert.match(serve.output(), /INFO\s+scan found 1 new .*newTags=\["fresh"\]/);
  });

  test("/metrics passes promtool check metrics, with standard process names and build info", async () => {
    const res = await fetch(`${serve.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    assert.match(text, /^process_cpu_seconds_total /m);
    assert.match(text, /^process_resident_memory_bytes /m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    assert.doesNotMatch(text, /^regscan_(process|nodejs)_/m);
    assert.match(
      text,
      /^regscan_build_info\{version="\d+\.\d+\.\d+[^"]*",node="\d+\.\d+\.\d+"\} 1$/m,
    );
    const check = spawnSync("promtool", ["check", "metrics"], {
      input: text,
      encoding: "utf8",
      timeout: 30_000,
    });
    if (check.error && (check.error as NodeJS.ErrnoException).code === "ENOENT") {
      assert.fail(
        "promtool is not installed: install Debian's prometheus package (apt-get install --no-install-recommends prometheus), which ships /usr/bin/promtool",
      );
    }
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
  });

  test("connections over the per-client and total caps are closed; others still get answers", async () => {
    // From an address of its own: the test's other requests come from 127.0.0.1.
    const flood = await openMany(port, "127.0.0.5", 30);
    await new Promise((r) => setTimeout(r, 300));
    const open = flood.filter((s) => !s.closed);
    console.log(
      `# 30 idle connections from one address: ${open.length} kept, ${30 - open.length} closed`,
    );
    assert.equal(open.length, 8, "the per-client cap");
    const health = await healthz(port, "127.0.0.2");
    assert.equal(health, 200, "a fresh client is answered");
    // 14 more from two other addresses, each under its own cap: the total cap (16) is hit.
    const other = [
      ...(await openMany(port, "127.0.0.3", 7)),
      ...(await openMany(port, "127.0.0.4", 7)),
    ];
    await new Promise((r) => setTimeout(r, 300));
    const kept = open.length + other.filter((s) => !s.closed).length;
    // The test's own keep-alive connection from 127.0.0.1 may hold one of the 16.
    assert.ok(kept <= 16 && kept >= 15, `${kept} connections kept`);
    for (const s of [...flood, ...other]) s.socket.destroy();
    await waitFor(async () => (await healthz(port, "127.0.0.1").catch(() => 0)) === 200, {
      what: "room again after the flood",
      timeoutMs: 5_000,
      intervalMs: 100,
    });
    const metrics = await fetch(`${serve.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await metrics.text();
    assert.match(text, /regscan_api_connections_refused_total\{reason="per-client"\} 22/);
    assert.match(text, /regscan_api_connections_refused_total\{reason="total"\} [1-9]/);
  });
});

interface Opened {
  socket: Socket;
  closed: boolean;
}

/** Opens `n` TCP connections from `localAddress` that never send a request. */
async function openMany(port: number, localAddress: string, n: number): Promise<Opened[]> {
  const out: Opened[] = [];
  for (let i = 0; i < n; i++) {
    const socket = connect({ host: "127.0.0.1", port, localAddress });
    const item = { socket, closed: false };
    // Reading, so that the server's end of the connection is seen.
    socket.resume();
    socket.on("error", () => {});
    socket.on("close", () => {
      item.closed = true;
    });
    await new Promise<void>((resolve) => {
      socket.once("connect", () => resolve());
      socket.once("close", () => resolve());
    });
    out.push(item);
  }
  return out;
}

function healthz(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/healthz", localAddress, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.setTimeout(5_000, () => req.destroy(new Error("healthz timed out")));
    req.end();
  });
}
