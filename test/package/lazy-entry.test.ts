/**
 * `import "regscan"` loads no store driver (ioredis, better-sqlite3, memjs), no YAML parser,
 * no prom-client and no cloud SDK or Kubernetes client: each is loaded when a feature first
 * needs it. The entry points are dist/'s, as the package ships them (tsc's emit keeps every
 * import of src/ as it is, static or dynamic), in plain node: through tsx each child cost
 * 0.7 s of CPU instead of 0.2. The same child runs against the installed tarball in
 * tarball.test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { ensureDist, ROOT } from "../support/built-dist.js";
import { loadEntry } from "./support.js";

const dist = (path: string) => join(ROOT, "dist", path);

describe("the package root loads its heavy dependencies only when used", () => {
  // dist/ as npm test built it, rebuilt here if a source file is newer (the file run alone).
  before(() => ensureDist());

  test("import of dist/index.js loads none of them; a SQLite store and metrics load theirs", async () => {
    const r = await loadEntry(dist("index.js"), { use: true });
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
      loadEntry(dist("exports/daemon.js")),
      loadEntry(dist("exports/stores/redis.js")),
    ]);
    assert.ok(daemon.afterImport.includes("yaml"), daemon.afterImport.join(", "));
    assert.ok(!daemon.afterImport.includes("@kubernetes/client-node"));
    assert.deepEqual(redis.afterImport, ["ioredis"]);
  });
});
