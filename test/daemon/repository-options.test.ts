import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { configSchema } from "../../src/config/schema.js";
import { repositoryOptions } from "../../src/daemon/repository-options.js";
import { parsePlatform } from "../../src/registry/manifest/platform.js";

describe("repositoryOptions", () => {
  test("per-repository options, with the defaults for the rest", () => {
    const config = configSchema.parse({
      repositories: [
        "alpine:3.19",
        {
          name: "ghcr.io/org/app",
          tags: { include: ["v*"], max: 5 },
          platform: "linux/arm/v7",
          interval: "10m",
        },
      ],
      defaults: { tags: { exclude: ["*-rc*"] }, interval: "1h" },
    });
    const table = repositoryOptions(config);
    assert.deepEqual(table.names, ["docker.io/library/alpine", "ghcr.io/org/app"]);
    const app = table.optionsFor("ghcr.io/org/app");
    assert.deepEqual(app?.tagFilter?.include, ["v*"]);
    assert.equal(app?.tagFilter?.maxTags, 5);
    assert.deepEqual(app?.platform, { os: "linux", architecture: "arm", variant: "v7" });
    assert.equal(app?.intervalMs, 600_000);
    assert.deepEqual(table.optionsFor("docker.io/library/alpine")?.tagFilter?.exclude, ["*-rc*"]);
    assert.equal(table.optionsFor("quay.io/from/a-source")?.intervalMs, 3_600_000);
  });

  test("the configuration refuses a bad name or tag pattern before a table is built", () => {
    // The located messages are checked in test/config/load.test.ts.
    assert.throws(
      () => configSchema.parse({ repositories: ["ok", "has space"] }),
      /invalid image reference/,
    );
    assert.throws(
      () => configSchema.parse({ repositories: [{ name: "alpine", tags: { include: ["/([/"] } }] }),
      /invalid tag filter/,
    );
  });

  test("platforms", () => {
    assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
    // The configured platform is normalised as the registry client matches platforms.
    const table = repositoryOptions(
      configSchema.parse({ repositories: [{ name: "alpine", platform: "linux/aarch64" }] }),
    );
    assert.deepEqual(table.optionsFor("docker.io/library/alpine")?.platform, {
      os: "linux",
      architecture: "arm64",
    });
  });
});
