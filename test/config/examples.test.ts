import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { SETTINGS } from "../../src/config/settings.js";

const root = new URL("../../", import.meta.url);
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "regscan-examples-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("shipped configuration", () => {
  test("regscan.example.yaml validates and documents every setting's flag and variable", async () => {
    const path = new URL("regscan.example.yaml", root).pathname;
    const { config } = await loadConfig({ file: path });
    assert.equal(config.listen, "127.0.0.1:8080");
    const text = readFileSync(path, "utf8");
    for (const s of SETTINGS) {
      assert.ok(text.includes(`--${s.flag}`), `--${s.flag} documented`);
      assert.ok(text.includes(s.env), `${s.env} documented`);
    }
  });

  test("the example's commented repository entry validates once uncommented", async () => {
    const entry = [
      "repositories:",
      "  - alpine",
      "  - name: ghcr.io/org/app",
      "    tags:",
      '      include: ["v*", "/^\\\\d+\\\\.\\\\d+$/"]',
      '      exclude: ["*-rc*"]',
      "      max: 50",
      "      order: semver",
      "    platform: linux/arm64",
      "    interval: 10m",
    ].join("\n");
    const path = join(dir, "entry.yaml");
    writeFileSync(path, entry);
    const { config } = await loadConfig({ file: path });
    assert.equal(config.repositories[1]?.tags?.include?.[1], "/^\\d+\\.\\d+$/");
  });

  test("the Kubernetes ConfigMap's configuration validates", async () => {
    const docs = parseAllDocuments(readFileSync(new URL("deploy/configmap.yaml", root), "utf8"));
    const cm = docs[0]?.toJS() as { data: Record<string, string> };
    const path = join(dir, "cm.yaml");
    writeFileSync(path, cm.data["regscan.yaml"] ?? "");
    const { config } = await loadConfig({ file: path });
    assert.equal(config.sources.kubernetes?.enabled, true);
    // The store is the Deployment's REGSCAN_CACHE (it names the pod's own namespace), which
    // test/package/deploy-config.test.ts checks with the Deployment's environment applied.
    assert.equal(config.cache, undefined);
    assert.ok(parse(readFileSync(new URL("deploy/kustomization.yaml", root), "utf8")));
  });
});
