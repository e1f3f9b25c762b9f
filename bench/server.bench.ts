/**
 * The daemon's HTTP API under expensive reads (bench/results/server.json): a real
 * `regscan serve` on a real registry with a 5,000-tag repository, then 100 concurrent
 * clients reading the whole repository three times each while `/healthz` is probed every
 * 20 ms from another thread. Prints `/healthz` p99 and the daemon's peak RSS as ratios
 * to their limits (100 ms, 400 MiB) and to the same figures with a single reader.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { describeFigures, heavyLoad, heavySetup } from "../test/daemon/heavy-load.js";
import { cleanupAll } from "../test/support/processes.js";

const TAGS = 5_000;
const CLIENTS = 100;
const READS = 3;
const P99_LIMIT_MS = 100;
const RSS_LIMIT_MIB = 400;

async function main(): Promise<void> {
  const setup = await heavySetup(TAGS);
  try {
    // The first read builds the answer; the baseline is one reader on the built answer.
    await heavyLoad(setup, 1, 1);
    const single = await heavyLoad(setup, 1, 30);
    const loaded = await heavyLoad(setup, CLIENTS, READS);
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      limits: { healthzP99Ms: P99_LIMIT_MS, rssMiB: RSS_LIMIT_MIB },
      singleReader: single,
      concurrentReaders: loaded,
      ratios: {
        healthzP99ToLimit: Math.round((loaded.healthz.p99Ms / P99_LIMIT_MS) * 100) / 100,
        rssPeakToLimit: Math.round((loaded.rssPeakMiB / RSS_LIMIT_MIB) * 100) / 100,
        healthzP99ToSingleReader:
          Math.round((loaded.healthz.p99Ms / Math.max(1, single.healthz.p99Ms)) * 100) / 100,
      },
    };
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/server.json", `${JSON.stringify(result, null, 2)}\n`);
    console.log(`single reader: ${describeFigures(single)}`);
    console.log(`${CLIENTS} readers: ${describeFigures(loaded)}`);
    console.log(
      `/healthz p99 ${loaded.healthz.p99Ms} ms = ${result.ratios.healthzP99ToLimit} x the ${P99_LIMIT_MS} ms limit ` +
        `(${result.ratios.healthzP99ToSingleReader} x a single reader's); ` +
        `peak RSS ${loaded.rssPeakMiB} MiB = ${result.ratios.rssPeakToLimit} x the ${RSS_LIMIT_MIB} MiB limit`,
    );
  } finally {
    await setup.stop();
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
