/**
 * Settings that would only fail (or misbehave) once running are refused when the
 * configuration is loaded: intervals of 0 (a busy loop of scans), listen ports past 65535,
 * empty store URLs, and YAML keys named `__proto__`, which must be reported, never merged
 * into the prototype.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { runCli } from "../support/cli.js";
import { configFiles, problem } from "./config-files.js";

const { dir: configDir, file } = configFiles("regscan-config-checks-");

describe("intervals", () => {
  test("warmer.interval of 0 or under a second is refused from file, environment and flag", async () => {
    const zero = await file("zero.yaml", "warmer:\n  interval: 0\n");
    const fromFile = await problem(loadConfig({ file: zero }));
    assert.equal(
      fromFile.message,
      `${zero}:2: at warmer.interval: expected a duration of at least 1s`,
    );
    const fromEnv = await problem(loadConfig({ env: { REGSCAN_INTERVAL: "500ms" } }));
    assert.match(fromEnv.message, /^environment variable REGSCAN_INTERVAL: at warmer\.interval: /);
    const fromFlag = await problem(loadConfig({ flags: { interval: "0s" } }));
    assert.match(fromFlag.message, /^flag --interval: at warmer\.interval: expected a duration/);
    const { config } = await loadConfig({ flags: { interval: "1s" } });
    assert.equal(config.warmer.interval, 1000);
  });

  test("repository and default intervals of 0 are refused; the images file poll has a 100 ms floor", async () => {
    const repo = await file("repo.yaml", "repositories:\n  - name: alpine\n    interval: 0\n");
    assert.match(
      (await problem(loadConfig({ file: repo }))).message,
      /:3: at repositories\[0\]\.interval: expected a duration of at least 1s/,
    );
    assert.match(
      (await problem(loadConfig({ flags: { refreshInterval: "0" } }))).message,
      /at defaults\.interval: expected a duration of at least 1s/,
    );
    assert.match(
      (await problem(loadConfig({ flags: { imagesFile: "/x", imagesFilePoll: "10ms" } }))).message,
      /at sources\.file\.pollInterval: expected a duration of at least 100ms/,
    );
    const { config } = await loadConfig({ flags: { imagesFile: "/x", imagesFilePoll: "200ms" } });
    assert.equal(config.sources.file?.pollInterval, 200);
  });
});

describe("listen", () => {
  test("a port past 65535 is refused; 0 (any free port) and 65535 are taken", async () => {
    for (const listen of ["127.0.0.1:99999", "[::1]:65536", ":70000"]) {
      const err = await problem(loadConfig({ flags: { listen } }));
      assert.match(err.message, /at listen: the port must be between 1 and 65535/, listen);
    }
    for (const listen of ["127.0.0.1:0", "127.0.0.1:65535", "[::1]:8080", ":1"]) {
      assert.equal((await loadConfig({ flags: { listen } })).config.listen, listen);
    }
  });

  test("regscan config check refuses listen 127.0.0.1:99999 with one message, exit 1", async () => {
    const path = await file("listen.yaml", "listen: 127.0.0.1:99999\n");
    const r = await runCli(["config", "check", path]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      `regscan: invalid configuration:\n${path}:1: at listen: the port must be between 1 and 65535 (or 0 for any free port)\n`,
    );
  });
});

describe("cache", () => {
  test("an empty or blank store URL is refused, not read as the default", async () => {
    for (const cache of ["", "   "]) {
      const err = await problem(loadConfig({ flags: { cache } }));
      assert.equal(
        err.message,
        "flag --cache: at cache: empty: leave the setting out for the default store (sqlite in the user cache directory)",
      );
    }
  });

  test("a value that is no store URL is refused at load time", async () => {
    const path = await file("cache.yaml", "cache: /var/lib/regscan/cache.db\n");
    const err = await problem(loadConfig({ file: path }));
    assert.match(
      err.message,
      new RegExp(`^${path}:1: at cache: expected a store URL such as "sqlite:PATH"`),
    );
    const { config } = await loadConfig({ flags: { cache: "redis://127.0.0.1:6379" } });
    assert.equal(config.cache, "redis://127.0.0.1:6379");
  });
});

describe("cache: sqlite", () => {
  test("a file the store could not use is refused at load time, and nothing is created", async () => {
    const missingDir = join(configDir(), "not-made");
    const path = await file("sqlite.yaml", `cache: sqlite:${join(missingDir, "cache.db")}\n`);
    const err = await problem(loadConfig({ file: path }));
    assert.equal(
      err.message,
      `${path}:1: at cache: the directory ${missingDir} does not exist; create it first`,
    );
    assert.match(
      (await problem(loadConfig({ flags: { cache: "sqlite:/proc/self/fd/0" } }))).message,
      /at cache: \/proc\/self\/fd\/0 is under \/proc/,
    );
    const fine = join(configDir(), "fine.db");
    const { config } = await loadConfig({ flags: { cache: `sqlite:${fine}` } });
    assert.equal(config.cache, `sqlite:${fine}`);
    assert.equal(existsSync(fine), false, "checking the configuration created the database");
    assert.equal(existsSync(missingDir), false);
  });
});

describe("__proto__ keys", () => {
  test("a top-level __proto__ is an unknown setting, and smuggles nothing in", async () => {
    const path = await file("proto.yaml", "__proto__:\n  listen: 0.0.0.0:1\n");
    const err = await problem(loadConfig({ file: path }));
    assert.match(err.message, /unknown setting "__proto__"/);
  });

  test("a mirror for __proto__ is refused as no registry host, not silently lost", async () => {
    const err = await problem(loadConfig({ flags: { mirror: ["__proto__=m.local"] } }));
    assert.match(
      err.message,
      /flag --mirror: at registry\.mirrors\.__proto__: expected a registry host/,
    );
    const { config } = await loadConfig({
      flags: { mirror: ["docker.io=m.local", "[::1]:5000=m2.local:5000"] },
    });
    assert.deepEqual(Object.entries(config.registry.mirrors), [
      ["docker.io", ["m.local"]],
      ["[::1]:5000", ["m2.local:5000"]],
    ]);
  });
});
