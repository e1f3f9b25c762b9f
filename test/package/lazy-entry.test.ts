/**
 * `import "regscan"` loads no store driver (ioredis, better-sqlite3, memjs), no YAML parser,
 * no prom-client and no cloud SDK or Kubernetes client: each is loaded when a feature first
 * needs it. The same child runs against the installed tarball in tarball.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadEntry } from "./support.js";

const src = (path: string) => fileURLToPath(new URL(`../../src/${path}`, import.meta.url));

describe("the package root loads its heavy dependencies only when used", () => {
  test("import of src/index.ts loads none of them; a SQLite store and metrics load theirs", async () => {
    const r = await loadEntry(src("index.ts"), { use: true, nodeArgs: ["--import", "tsx"] });
    assert.ok(r.seen > 50, "the resolve hook saw the modules being loaded");
    assert.ok(r.exports > 50, "the root exports the library");
    assert.deepEqual(r.afterImport, []);
    assert.ok(r.afterUse.includes("better-sqlite3"), r.afterUse.join(", "));
    assert.ok(r.afterUse.includes("prom-client"), r.afterUse.join(", "));
    for (const pkg of ["ioredis", "memjs", "yaml", "@kubernetes/client-node"]) {
      assert.ok(!r.afterUse.includes(pkg), `${pkg} stays unloaded: ${r.afterUse.join(", ")}`);
    }
  });

  test("regscan/daemon loads the YAML parser, regscan/stores/redis loads ioredis (the positive control)", async () => {
    // Two independent children, started together: one waits less for the other on 2 cores.
    const [daemon, redis] = await Promise.all([
      loadEntry(src("exports/daemon.ts"), { nodeArgs: ["--import", "tsx"] }),
      loadEntry(src("exports/stores/redis.ts"), { nodeArgs: ["--import", "tsx"] }),
    ]);
    assert.ok(daemon.afterImport.includes("yaml"), daemon.afterImport.join(", "));
    assert.ok(!daemon.afterImport.includes("@kubernetes/client-node"));
    assert.deepEqual(redis.afterImport, ["ioredis"]);
  });
});
