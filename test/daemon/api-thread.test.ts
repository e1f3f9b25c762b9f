/**
 * `regscan serve`'s HTTP API on a thread of its own (src/daemon/api-thread.ts): reads are
 * answered while the warmer's thread is blocked, every route still works through it
 * (statuses, refreshes, events, metrics), a store in memory keeps the API on the warmer's
 * thread, and a thread that dies is started again on the same address.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import pino from "pino";
import { isProcessLocalStore } from "../../src/cache/open-store.js";
import { configSchema } from "../../src/config/schema.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { ImageBuilder } from "../support/image-builder.js";
import { makeTempDir } from "../support/processes.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import { waitFor } from "../support/wait-for.js";
import { idleControl, servingAgain, startBareApiThread } from "./bare-api-thread.js";

/** A read's status and milliseconds, asked from another thread while this one is blocked. */
interface TimedRead {
  status: number;
  ms: number;
}

/**
 * Reads `url` from a thread of its own for `ms` (a read every 40 ms or so), starting as this
 * thread is blocked for `blockMs` (busy, as a warmer's long task would keep it): the reads'
 * statuses and times.
 */
async function readsWhileBlocked(url: string, ms: number, blockMs: number): Promise<TimedRead[]> {
  const reader = new Worker(
    `const { parentPort, workerData } = require("node:worker_threads");
     parentPort.once("message", async () => {
       const reads = [];
       const end = Date.now() + workerData.ms;
       while (Date.now() < end) {
         const t0 = performance.now();
         try {
           const res = await fetch(workerData.url, { signal: AbortSignal.timeout(10000) });
           await res.arrayBuffer();
           reads.push({ status: res.status, ms: performance.now() - t0 });
         } catch (err) {
           reads.push({ status: 0, ms: performance.now() - t0 });
         }
         // Within the API's per-client rate (50/s).
         await new Promise((r) => setTimeout(r, 40));
       }
       parentPort.postMessage(reads);
     });
     parentPort.postMessage("ready");`,
    { eval: true, workerData: { url, ms } },
  );
  const messages: unknown[] = [];
  const done = new Promise<TimedRead[]>((resolve, reject) => {
    reader.on("message", (m) => {
      messages.push(m);
      if (Array.isArray(m)) resolve(m as TimedRead[]);
    });
    reader.once("error", reject);
  });
  await waitFor(() => messages.includes("ready"), { what: "the reader thread to start" });
  // Delivered to the reader at once, while this thread is busy.
  reader.postMessage("go");
  const until = performance.now() + blockMs;
  while (performance.now() < until) {
    // Busy: nothing else runs on this thread meanwhile.
  }
  const reads = await done;
  await reader.terminate();
  return reads;
}

function daemonConfig(
  registry: RegistryHandle,
  cache: string,
  extra: Record<string, unknown> = {},
) {
  return configSchema.parse({
    listen: "127.0.0.1:0",
    repositories: [`${registry.host}/team/app`],
    registry: { insecureHosts: [registry.host] },
    cache,
    server: { shutdownTimeout: "2s", apiThread: true },
    ...extra,
  });
}

describe("the API thread", () => {
  let registry: RegistryHandle;
  let builder: ImageBuilder;
  let dir: string;

  before(async () => {
    dir = makeTempDir("regscan-api-thread-");
    registry = await startRegistry();
    builder = new ImageBuilder(registry);
    await builder.pushImage("team/app", ["v1", "v2"]);
  });
  after(async () => {
    await builder?.close();
  });

  test("answers reads while the warmer's thread is blocked, and serves every route through it", async () => {
    const logs: string[] = [];
    const daemon = await Daemon.start({
      config: daemonConfig(registry, `sqlite:${join(dir, "thread.db")}`, {
        webhooks: { generic: { secret: "env:HOOK" } },
      }),
      logger: pino({ level: "info" }, { write: (s: string) => logs.push(s) }),
      // Read by the thread, which makes the receivers.
      env: { HOOK: "hook-secret" },
    });
    const base = `http://127.0.0.1:${daemon.address.port}`;
    const app = `${registry.host}/team/app`;
    try {
      assert.match(logs.join(""), /"apiThread":true.*"msg":"regscan serving"/);
      await waitFor(async () => (await fetch(`${base}/v1/repositories/${app}`)).status === 200, {
        what: `${app} to be cached`,
        timeoutMs: 30_000,
      });

      const reads = await readsWhileBlocked(`${base}/v1/repositories/${app}`, 1_200, 2_000);
      assert.ok(reads.length >= 5, `${reads.length} reads during the block`);
      assert.deepEqual(new Set(reads.map((r) => r.status)), new Set([200]));
      const slowest = Math.max(...reads.map((r) => r.ms));
      assert.ok(slowest < 1_000, `the slowest read took ${slowest.toFixed(0)} ms`);

      // The status list and the refresh are the warmer's thread's, asked through the thread.
      const list = (await (await fetch(`${base}/v1/repositories`)).json()) as {
        repositories: Array<{ name: string; tagCount: number }>;
      };
      assert.deepEqual(
        list.repositories.map((r) => [r.name, r.tagCount]),
        [[app, 2]],
      );
      const missing = await fetch(`${base}/v1/repositories/${registry.host}/team/none`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { code: string }).code, "NOT_WATCHED");

      // A webhook is taken by the thread and its refresh asked of the warmer's.
      const hook = await fetch(`${base}/v1/webhooks/generic`, {
        method: "POST",
        headers: { authorization: "Bearer hook-secret", "content-type": "application/json" },
        body: JSON.stringify({ repository: app, tag: "v2" }),
      });
      assert.equal(hook.status, 202);
      assert.deepEqual(
        { ...((await hook.json()) as { refreshed: number; unwatched: number }) },
        { status: "accepted", events: 1, refreshed: 1, unwatched: 0, rejected: 0 },
      );
      assert.match(logs.join(""), /"thread":"api".*"msg":"webhook received"/);

      // A pushed tag: the refresh, its event on a stream, and the answer with it.
      const events = new AbortController();
      const stream = await fetch(`${base}/v1/events`, { signal: events.signal });
      assert.equal(stream.status, 200);
      const seen = (async () => {
        let text = "";
        const decoder = new TextDecoder();
        for await (const chunk of stream.body as AsyncIterable<Uint8Array>) {
          text += decoder.decode(chunk, { stream: true });
          if (text.includes('"tag":"v3"')) return text;
        }
        return text;
      })();
      await builder.pushImage("team/app", ["v3"]);
      const refresh = await fetch(`${base}/v1/repositories/${app}/refresh`, { method: "POST" });
      assert.equal(refresh.status, 202);
      assert.match(
        ((await refresh.json()) as { refresh: string }).refresh,
        /^(started|queued|coalesced)$/,
      );
      const timeout = setTimeout(() => events.abort(), 15_000);
      const text = await seen.catch(() => "");
      clearTimeout(timeout);
      events.abort();
      assert.match(text, /"type":"new-tag".*"tag":"v3"/);
      const repo = (await (await fetch(`${base}/v1/repositories/${app}`)).json()) as {
        tags: string[];
      };
      assert.deepEqual(repo.tags.slice().sort(), ["v1", "v2", "v3"]);

      // One exposition: the warmer's thread's metrics, then the API's, each family once.
      const metrics = await (await fetch(`${base}/metrics`)).text();
      const families = [...metrics.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
      assert.equal(new Set(families).size, families.length, "no family twice");
      for (const family of [
        "process_resident_memory_bytes",
        "regscan_warmer_repositories_scanned_total",
        "regscan_api_requests_total",
        "regscan_cache_request_duration_seconds",
      ]) {
        assert.ok(families.includes(family), `${family} is served`);
      }
    } finally {
      assert.equal(await daemon.stop(), true, "stopped within its bound");
    }
  });

  test("with a store in memory, or turned off, the API shares the warmer's thread (and waits for it)", async () => {
    assert.equal(isProcessLocalStore("memory:"), true);
    assert.equal(isProcessLocalStore("sqlite::memory:"), true);
    assert.equal(isProcessLocalStore("sqlite://:memory:"), true);
    assert.equal(isProcessLocalStore("sqlite:/tmp/x.db"), false);
    assert.equal(isProcessLocalStore("redis://127.0.0.1:6379"), false);
    assert.equal(isProcessLocalStore(undefined), false);
    for (const config of [
      daemonConfig(registry, "memory:"),
      // Off by default.
      daemonConfig(registry, `sqlite:${join(dir, "off.db")}`, { server: {} }),
    ]) {
      const logs: string[] = [];
      const daemon = await Daemon.start({
        config,
        logger: pino({ level: "info" }, { write: (s: string) => logs.push(s) }),
        env: {},
      });
      try {
        assert.match(logs.join(""), /"apiThread":false.*"msg":"regscan serving"/);
        const url = `http://127.0.0.1:${daemon.address.port}/healthz`;
        const reads = await readsWhileBlocked(url, 300, 1_500);
        // The first read waited for the block: what the thread of its own avoids.
        assert.ok((reads[0]?.ms ?? 0) >= 1_000, `first read after ${reads[0]?.ms} ms`);
      } finally {
        await daemon.stop();
      }
    }
  });

  test("the thread's heap keeps its own limit under the process's heap flags (the image's NODE_OPTIONS)", async () => {
    // As `--max-old-space-size=128 --max-semi-space-size=8` in NODE_OPTIONS set them: V8's
    // flags are the process's, and took over the thread's limits (a 152 MiB heap).
    setFlagsFromString("--max-old-space-size=128");
    setFlagsFromString("--max-semi-space-size=8");
    const thread = await startBareApiThread(join(dir, "h.db"), pino({ level: "silent" }));
    try {
      const text = await (await fetch(`http://127.0.0.1:${thread.address.port}/metrics`)).text();
      const limit = Number(/^regscan_api_thread_heap_limit_bytes (\d+)/m.exec(text)?.[1]);
      const used = Number(/^regscan_api_thread_heap_used_bytes (\d+)/m.exec(text)?.[1]);
      const mib = 1024 * 1024;
      assert.ok(used > 0 && used < limit, `heap used ${used} of ${limit}`);
      // 96 MiB old, 8 MiB young, and V8's own rounding: under the flags' 152 MiB.
      assert.ok(
        limit >= 96 * mib && limit <= 120 * mib,
        `the thread's heap limit: ${limit / mib} MiB`,
      );
    } finally {
      await thread.close(1_000);
      setFlagsFromString("--max-old-space-size=0");
      setFlagsFromString("--max-semi-space-size=0");
    }
  });

  test("the thread's own event-loop delay and GC time are on /metrics, apart from the warmer's thread's", async () => {
    const statuses = Array.from({ length: 50_000 }, (_, i) => ({
      repository: `registry.test/team/app-${i}`,
      tagCount: i,
      lastUpdate: new Date(1_700_000_000_000 + i),
      scanning: false,
    }));
    const control = { ...idleControl, statuses: async () => statuses };
    const thread = await startBareApiThread(
      join(dir, "loop.db"),
      pino({ level: "silent" }),
      undefined,
      control,
    );
    try {
      const base = `http://127.0.0.1:${thread.address.port}`;
      const sample = (text: string, name: string) =>
        Number(new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text)?.[1]);
      await (await fetch(`${base}/metrics`)).text();
      const res = await fetch(`${base}/v1/repositories`);
      assert.equal(res.status, 200);
      const bytes = (await res.clone().arrayBuffer()).byteLength;
      assert.equal(res.headers.get("content-length"), String(bytes));
      const list = (await res.json()) as {
        repositories: Array<{ name: string; tagCount: number }>;
      };
      assert.equal(list.repositories.length, 50_000);
      const last = list.repositories[49_999] as {
        name: string;
        tagCount: number;
        lastUpdate: string;
      };
      assert.equal(last.name, "registry.test/team/app-49999");
      assert.equal(last.tagCount, 49_999);
      assert.equal(last.lastUpdate, new Date(1_700_000_049_999).toISOString());
      // Requests enough for the thread's young generation to fill at least once.
      for (let round = 0; round < 100; round++) {
        await Promise.all(
          Array.from({ length: 10 }, async () => (await fetch(`${base}/healthz`)).text()),
        );
      }
      // This (the warmer's) thread held up for 300 ms: the API thread's loop is not.
      const until = performance.now() + 300;
      while (performance.now() < until) {
        // busy
      }
      const text = await (await fetch(`${base}/metrics`)).text();
      const max = sample(text, "regscan_api_thread_eventloop_lag_max_seconds");
      const p99 = sample(text, "regscan_api_thread_eventloop_lag_p99_seconds");
      assert.ok(max > 0 && max < 0.2, `the thread's longest delay: ${max} s`);
      assert.ok(p99 >= 0 && p99 <= max, `p99 ${p99} s, max ${max} s`);
      const minor = sample(text, 'regscan_api_thread_gc_seconds_total{kind="minor"}');
      assert.ok(minor > 0, `the thread's minor GC: ${minor} s`);
    } finally {
      await thread.close(1_000);
    }
  });

  test("a thread that dies is started again on the same address", async () => {
    const logs: string[] = [];
    const thread = await startBareApiThread(
      join(dir, "r.db"),
      pino({ level: "info" }, { write: (s: string) => logs.push(s) }),
    );
    const url = `http://127.0.0.1:${thread.address.port}/healthz`;
    try {
      assert.equal((await fetch(url)).status, 200);
      await thread.crash();
      await servingAgain(url);
      const text = logs.join("");
      assert.match(text, /the API thread stopped; starting it again/);
      assert.match(text, /the API thread is serving again/);
    } finally {
      await thread.close(1_000);
    }
  });
});
