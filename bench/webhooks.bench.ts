/**
 * Push to visible through registry webhooks (bench/results/webhooks.json): Debian's
 * docker-registry notifies a real `regscan serve` that polls once an hour; 10 pushes (new
 * tags and a moved tag, alternately), each timed from the end of the push to the tag being
 * both answered by GET /v1/images/... and seen as an SSE event. Prints median and p99 as
 * ratios to the 2 s limit, and the registry requests each push cost.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { startServe } from "../test/daemon/serve-process.js";
import {
  measurePush,
  median,
  openEvents,
  servedDigest,
  servePort,
  startNotifyingRegistry,
  until,
} from "../test/daemon/webhook-support.js";
import { ImageBuilder } from "../test/support/image-builder.js";
import { cleanupAll } from "../test/support/processes.js";

const PUSHES = 10;
const LIMIT_MS = 2_000;
const REPO = "bench/hooks";

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function main(): Promise<void> {
  const port = await servePort();
  const { registry, token } = await startNotifyingRegistry([port]);
  const builder = new ImageBuilder(registry);
  const name = `${registry.host}/${REPO}`;
  await builder.pushImage(REPO, ["v0", "moving"]);
  const serve = await startServe(
    [
      "--listen",
      `127.0.0.1:${port}`,
      "--image",
      name,
      "--insecure-host",
      registry.host,
      "--cache",
      "memory:",
      "--interval",
      "1h",
      "--log-level",
      "warn",
      "--webhook",
      "distribution",
      "--webhook-secret",
      "distribution=env:BENCH_DIST_HOOK",
    ],
    { BENCH_DIST_HOOK: token },
  );
  try {
    await until(
      async () => (await servedDigest(serve, `${name}:v0`)) !== undefined,
      "the first scan",
      30_000,
    );
    const events = await openEvents(serve.url);
    await new Promise((r) => setTimeout(r, 1_500));
    const latencies: number[] = [];
    const requests: Array<{
      tagLists: number;
      heads: number;
      manifestGets: number;
      blobGets: number;
    }> = [];
    for (let i = 0; i < PUSHES; i++) {
      const tag = i % 2 === 0 ? `new-${i}` : "moving";
      const measured = await measurePush({
        registry,
        builder,
        serve,
        events,
        repo: REPO,
        tag,
        timeoutMs: 10_000,
      });
      latencies.push(Math.round(measured.latencyMs));
      const made = measured.requests;
      requests.push({
        tagLists: made.tagLists,
        heads: [...made.heads.values()].reduce((a, b) => a + b, 0),
        manifestGets: made.manifestGets,
        blobGets: made.blobGets,
      });
    }
    events.close();
    const mid = median(latencies);
    const p99 = percentile(latencies, 99);
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      pushes: PUSHES,
      limitMs: LIMIT_MS,
      pushToVisibleMs: { median: mid, p99, all: latencies },
      ratios: {
        medianToLimit: Math.round((mid / LIMIT_MS) * 100) / 100,
        p99ToLimit: Math.round((p99 / LIMIT_MS) * 100) / 100,
      },
      registryRequestsPerPush: requests,
    };
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/webhooks.json", `${JSON.stringify(result, null, 2)}\n`);
    console.log(
      `push to visible (API and SSE), ${PUSHES} pushes: median ${mid} ms = ${result.ratios.medianToLimit} x the ${LIMIT_MS} ms limit, ` +
        `p99 ${p99} ms = ${result.ratios.p99ToLimit} x; registry requests per push: ` +
        `${requests.map((r) => `${r.tagLists}L+${r.heads}H+${r.manifestGets}M+${r.blobGets}B`).join(" ")}`,
    );
  } finally {
    await builder.close();
    await serve.stop();
    await registry.stop();
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
