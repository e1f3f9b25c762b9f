/**
 * `Daemon.stop()` is bounded even when a piece it closes never answers: a store whose
 * `close()` hangs delays the stop by the close bound at most, and the stop reports it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pino from "pino";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { configSchema } from "../../src/config/schema.js";
import { Daemon } from "../../src/daemon/daemon.js";

describe("Daemon.stop", () => {
  test("a store that never closes cannot hold the stop past its bound", async () => {
    const store = new MemoryStore();
    let closeCalled = false;
    store.close = () => {
      closeCalled = true;
      return new Promise<void>(() => {});
    };
    const logs: string[] = [];
    const daemon = await Daemon.start({
      config: configSchema.parse({
        listen: "127.0.0.1:0",
        // Nothing listens on port 1: the scan fails at once and the daemon keeps running.
        repositories: ["127.0.0.1:1/team/app"],
        registry: { insecureHosts: ["127.0.0.1:1"] },
        server: { shutdownTimeout: "200ms" },
      }),
      logger: pino({ level: "info" }, { write: (s: string) => logs.push(s) }),
      env: {},
      store,
      // The default is 5 s; what is tested is that the bound holds, not its length.
      closeBoundMs: 500,
    });
    const started = Date.now();
    const clean = await daemon.stop();
    const took = Date.now() - started;
    assert.equal(clean, false, "a close that timed out is reported");
    assert.ok(closeCalled);
    assert.ok(took >= 500, `waited for the close bound: ${took} ms`);
    assert.ok(took < 200 + 500 + 1_500, `stopped in ${took} ms`);
    assert.match(logs.join(""), /did not close within \d+ ms.*"msg":"closing failed"/);
    assert.match(logs.join(""), /"msg":"stopped"/);
  });
});
