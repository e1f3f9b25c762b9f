import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { configFiles, problem } from "./config-files.js";

const { dir: configDir, file } = configFiles("regscan-config-");

describe("loadConfig", () => {
  test("defaults without a file", async () => {
    const { config } = await loadConfig({});
    assert.equal(config.listen, "127.0.0.1:8080");
    assert.deepEqual(config.images.exclude, ["k8s.gcr.io/*"]);
    assert.equal(config.registry.rps, 200);
    assert.equal(config.warmer.interval, 60_000);
    assert.deepEqual(config.repositories, []);
  });

  test("reads every kind of value from a file", async () => {
    const path = await file(
      "full.yaml",
      [
        "listen: 0.0.0.0:9090",
        "cache: redis://:pw@127.0.0.1:6379",
        "registry:",
        "  rps: 5",
        "  insecureHosts: [localhost:5000]",
        "  mirrors: { docker.io: [mirror.local:5000] }",
        "repositories:",
        "  - alpine",
        "  - name: ghcr.io/org/app",
        "    tags: { include: ['v*'], max: 10, order: semver }",
        "    platform: linux/arm64",
        "    interval: 1h30m",
        "sources:",
        "  file: { path: /etc/regscan/images, pollInterval: 30s }",
      ].join("\n"),
    );
    const { config } = await loadConfig({ file: path });
    assert.equal(config.listen, "0.0.0.0:9090");
    assert.equal(config.registry.rps, 5);
    assert.deepEqual(config.registry.mirrors, { "docker.io": ["mirror.local:5000"] });
    assert.deepEqual(config.repositories[0], { name: "alpine" });
    const second = config.repositories[1];
    assert.ok(second);
    assert.equal(second.interval, 90 * 60_000);
    assert.equal(second.platform, "linux/arm64");
    assert.equal(config.sources.file?.pollInterval, 30_000);
  });

  test("a wrong type names the file, the line, the path and what was expected", async () => {
    const path = await file("bad-type.yaml", "listen: 127.0.0.1:8080\nregistry:\n  rps: fast\n");
    const err = await problem(loadConfig({ file: path }));
    assert.match(err.message, new RegExp(`${path.replace(/[.]/g, "\\.")}:3`));
    assert.match(err.message, /at registry\.rps/);
    assert.match(err.message, /expected number/);
  });

  test("an unknown key is named", async () => {
    const path = await file("unknown.yaml", "registry:\n  rsp: 5\n");
    const err = await problem(loadConfig({ file: path }));
    assert.match(err.message, /bad|unknown/);
    assert.match(err.message, /at registry: unknown setting "rsp"/);
    assert.ok(err.message.includes(path));
  });

  test("a bad duration and a bad platform in a list item are located", async () => {
    const path = await file(
      "bad-item.yaml",
      "repositories:\n  - alpine\n  - name: app\n    interval: soon\n    platform: linux\n",
    );
    const err = await problem(loadConfig({ file: path }));
    assert.match(err.message, /at repositories\[1\]\.interval: expected a duration/);
    assert.match(err.message, /at repositories\[1\]\.platform: expected a platform/);
  });

  test("YAML syntax errors name the file, line and column", async () => {
    const path = await file("syntax.yaml", "listen: [unclosed\nrps: 3\n");
    const err = await problem(loadConfig({ file: path }));
    assert.ok(err.message.startsWith(`${path}:2:1: not valid YAML`), err.message);
    assert.match(err.message, /not valid YAML/);
  });

  test("a missing file is named", async () => {
    const err = await problem(loadConfig({ file: join(configDir(), "nope.yaml") }));
    assert.match(err.message, /nope\.yaml: cannot read configuration: file not found/);
  });

  test("a top level that is not a mapping is refused", async () => {
    const path = await file("list.yaml", "- alpine\n");
    const err = await problem(loadConfig({ file: path }));
    assert.match(err.message, /expected a mapping of settings/);
  });

  test("flags win over environment variables, which win over the file", async () => {
    const path = await file(
      "prec.yaml",
      'listen: 127.0.0.1:1111\ncache: "memory:"\nregistry:\n  rps: 1\n  burst: 2\n',
    );
    const env = { REGSCAN_LISTEN: "127.0.0.1:2222", REGSCAN_RPS: "3", REGSCAN_TRACE: "yes" };
    const { config, origins } = await loadConfig({
      file: path,
      env,
      flags: { listen: "127.0.0.1:3333" },
    });
    assert.equal(config.listen, "127.0.0.1:3333");
    assert.equal(config.registry.rps, 3);
    assert.equal(config.registry.burst, 2);
    assert.equal(config.cache, "memory:");
    assert.equal(config.registry.trace, true);
    assert.equal(origins.get("listen"), "flag --listen");
    assert.equal(origins.get("registry.rps"), "environment variable REGSCAN_RPS");
  });

  test("warmer.pollTags: on by default; off from the file, the environment or --poll-tags false", async () => {
    assert.equal((await loadConfig({})).config.warmer.pollTags, true);
    const path = await file("poll.yaml", "warmer:\n  pollTags: false\n");
    assert.equal((await loadConfig({ file: path })).config.warmer.pollTags, false);
    const env = { REGSCAN_POLL_TAGS: "off" };
    assert.equal((await loadConfig({ env })).config.warmer.pollTags, false);
    // A bare flag says true; a flag with a value wins over the environment.
    assert.equal(
      (await loadConfig({ env, flags: { pollTags: true } })).config.warmer.pollTags,
      true,
    );
    const off = await loadConfig({ file: path, flags: { pollTags: "false" } });
    assert.equal(off.config.warmer.pollTags, false);
    assert.equal(off.origins.get("warmer.pollTags"), "flag --poll-tags");
    const bad = await problem(loadConfig({ flags: { pollTags: "sometimes" } }));
    assert.match(bad.message, /--poll-tags.*expected true or false/);
  });

  test("--image and REGSCAN_IMAGES add to the file's repositories; list flags replace", async () => {
    const path = await file(
      "images.yaml",
      "repositories: [alpine]\nregistry:\n  insecureHosts: [a:5000]\n",
    );
    const { config } = await loadConfig({
      file: path,
      env: { REGSCAN_IMAGES: "busybox, nginx", REGSCAN_INSECURE_HOSTS: "b:5000" },
      flags: {
        image: ["ghcr.io/x/y"],
        insecureHost: ["c:5000", "d:5000"],
        mirror: ["docker.io=m1", "docker.io=m2"],
      },
    });
    assert.deepEqual(
      config.repositories.map((r) => r.name),
      ["alpine", "busybox", "nginx", "ghcr.io/x/y"],
    );
    assert.deepEqual(config.registry.insecureHosts, ["c:5000", "d:5000"]);
    assert.deepEqual(config.registry.mirrors, { "docker.io": ["m1", "m2"] });
  });

  test("a bad environment variable or flag is named as such", async () => {
    const env = await problem(loadConfig({ env: { REGSCAN_BURST: "many" } }));
    assert.match(
      env.message,
      /^environment variable REGSCAN_BURST: at registry\.burst: expected number/,
    );
    const flag = await problem(loadConfig({ flags: { listen: "nowhere" } }));
    assert.match(flag.message, /^flag --listen: at listen: expected "host:port"/);
    const bool = await problem(loadConfig({ env: { REGSCAN_KUBERNETES: "maybe" } }));
    assert.match(bool.message, /REGSCAN_KUBERNETES.*expected true or false/);
    const mirror = await problem(loadConfig({ flags: { mirror: ["docker.io"] } }));
    assert.match(mirror.message, /flag --mirror.*expected HOST=MIRROR/);
  });

  test("the API token can come from a file", async () => {
    const tokenFile = await file("token", "s3cret-token\n");
    const { config } = await loadConfig({ flags: { apiTokenFile: tokenFile } });
    assert.equal(config.apiToken, "s3cret-token");
    const err = await problem(loadConfig({ flags: { apiTokenFile: join(configDir(), "none") } }));
    assert.match(
      err.message,
      /flag --api-token-file: at apiTokenFile: cannot read the API token file/,
    );
    const spaced = await file("spaced-token", "two words\n");
    const spacedErr = await problem(loadConfig({ flags: { apiTokenFile: spaced } }));
    assert.match(spacedErr.message, /must hold one token without spaces/);
    assert.ok(!spacedErr.message.includes("two words"));
    const direct = await problem(loadConfig({ env: { REGSCAN_API_TOKEN: "sec ret" } }));
    assert.match(direct.message, /REGSCAN_API_TOKEN: at apiToken: expected a token without spaces/);
    assert.ok(!direct.message.includes("sec ret"));
  });

  test("a bad repository name or tag pattern stops loading, named with file, line and path", async () => {
    const badName = await file("bad-name.yaml", "repositories:\n  - ok\n  - has space\n");
    const nameErr = await problem(loadConfig({ file: badName }));
    assert.ok(
      nameErr.message.startsWith(`${badName}:3: at repositories[1].name: invalid image reference`),
      nameErr.message,
    );
    const badPattern = await file(
      "bad-pattern.yaml",
      "repositories:\n  - name: alpine\n    tags: { include: ['/([/'] }\n",
    );
    const patternErr = await problem(loadConfig({ file: badPattern }));
    assert.match(
      patternErr.message,
      /at repositories\[0\]\.tags\.include\[0\]: invalid tag filter "\/\(\[\/"/,
    );
    assert.ok(patternErr.message.startsWith(`${badPattern}:3:`), patternErr.message);
    const badDefault = await problem(loadConfig({ flags: { tagInclude: ["[unclosed"] } }));
    assert.match(
      badDefault.message,
      /^flag --tag-include: at defaults\.tags\.include\[0\]: invalid tag filter "\[unclosed": not a valid glob/,
    );
  });

  test("a tag filter's max must be a positive integer", async () => {
    for (const bad of ["0", "-1", "2.5"]) {
      const err = await problem(loadConfig({ env: { REGSCAN_TAG_MAX: bad } }));
      assert.match(err.message, /REGSCAN_TAG_MAX: at defaults\.tags\.max/);
    }
    const { config } = await loadConfig({ env: { REGSCAN_TAG_MAX: "3" } });
    assert.equal(config.defaults.tags?.max, 3);
  });
});
