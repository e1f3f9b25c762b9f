/**
 * 100 concurrent reads of a 5,000-tag repository from a real `regscan serve`: every reader
 * gets an answer (the whole JSON, or 503 `SERVER_BUSY` with Retry-After), `/healthz`
 * keeps answering, and the process stays bounded. The figures are printed; the performance
 * targets themselves are measured by bench/server.bench.ts (several reads per client), the
 * bounds here are generous. One read per client: the 100 reads at once are the audit's load;
 * a second round would only measure throughput, and doubled the test's CPU time.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { cleanupAll } from "../support/processes.js";
import { describeFigures, heavyLoad, heavySetup } from "./heavy-load.js";

after(cleanupAll);

describe("heavy reads", () => {
  test("100 concurrent reads of a 5,000-tag repository", async () => {
    // The daemon's first scan of the 5,000 tags is set-up, not what is tested: at the default
    // budget of 200 requests a second for the host it took 25 s of the test's 28.
    const setup = await heavySetup(5_000, ["--rps", "100000", "--burst", "1000"]);
    try {
      const f = await heavyLoad(setup, 100, 1);
      console.log(`# ${describeFigures(f)}`);
      const answered = (f.statuses["200"] ?? 0) + (f.statuses["503"] ?? 0);
      assert.equal(answered, 100, `every read answered 200 or 503: ${JSON.stringify(f.statuses)}`);
      assert.ok((f.statuses["200"] ?? 0) > 0);
      assert.ok(f.responseBytes > 4_000_000, `${f.responseBytes} bytes: the whole repository`);
      assert.equal(f.healthz.failures, 0);
      // Generous: the audit saw 23 s and 773 MB; the targets (100 ms, 400 MB) are benched.
      assert.ok(f.healthz.maxMs < 5_000, `/healthz max ${f.healthz.maxMs} ms`);
      assert.ok(f.rssPeakMiB < 700, `RSS peak ${f.rssPeakMiB} MiB`);
    } finally {
      await setup.stop();
    }
  });
});
