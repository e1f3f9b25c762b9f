import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { ConfigError } from "../../src/config/errors.js";
import { loadConfig } from "../../src/config/load.js";
import { formatConfig, MASK, maskUrl } from "../../src/config/mask.js";

describe("masking", () => {
  test("URLs lose their passwords", () => {
    assert.equal(maskUrl("redis://:hunter2@127.0.0.1:6379/0"), `redis://:${MASK}@127.0.0.1:6379/0`);
    assert.equal(maskUrl("rediss://user:hunter2@h:6380"), `rediss://user:${MASK}@h:6380`);
    assert.equal(maskUrl("https://tok3n@mirror.local"), `https://${MASK}@mirror.local`);
    assert.equal(maskUrl("memcached://a:11211,b:11211"), "memcached://a:11211,b:11211");
    assert.equal(maskUrl("sqlite:/var/lib/regscan/cache.db"), "sqlite:/var/lib/regscan/cache.db");
    assert.equal(
      maskUrl("redis://127.0.0.1:6379/0?db=1&password=hunter2&name=x"),
      `redis://127.0.0.1:6379/0?db=1&password=${MASK}&name=x`,
    );
    assert.equal(maskUrl("redis://h:6379?Token=abc"), `redis://h:6379?Token=${MASK}`);
  });

  test("the effective configuration shows no secret", async () => {
    const { config } = await loadConfig({
      env: { REGSCAN_API_TOKEN: "api-tok-XYZ", REGSCAN_CACHE: "redis://:pw-ABC@127.0.0.1:6379" },
      flags: { mirror: ["docker.io=https://m.local"], interval: "90s" },
    });
    const text = formatConfig(config);
    for (const secret of ["api-tok-XYZ", "pw-ABC"]) assert.ok(!text.includes(secret), text);
    // A password in a mirror URL is refused, without being repeated in the message.
    await assert.rejects(
      loadConfig({ flags: { mirror: ["docker.io=https://u:mirror-PW@m.local"] } }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /at registry\.mirrors\.docker\.io\[0\]: expected a mirror host/);
        assert.ok(!err.message.includes("mirror-PW"), err.message);
        return true;
      },
    );
    const shown = parse(text) as Record<string, Record<string, unknown>>;
    assert.equal(shown.apiToken, MASK);
    assert.equal(shown.warmer?.interval, "1m30s");
    // Every duration is written as one, the registry's deadlines too.
    assert.equal(shown.registry?.requestTimeout, "1m");
    assert.equal(shown.registry?.tagListTimeout, "5m");
    assert.equal(shown.listen, "127.0.0.1:8080");
  });
});
