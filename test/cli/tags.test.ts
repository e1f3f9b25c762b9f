/**
 * `regscan tags` against the real registry in anonymous, htpasswd and token modes: on a
 * repository with 5,000 tags it prints exactly what `skopeo list-tags` prints, in the same
 * order; `--output json`; failures exit 1 with one line on stderr. The CLI's `main` runs in
 * this process; the token mode's 5,000 tags run the real process (the command's smoke test).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli, runCliInProcess } from "../support/cli.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RegistryHandle, type RegistryMode, startRegistry } from "../support/registry.js";
import { skopeo } from "./skopeo.js";

const TAGS = Array.from({ length: 5000 }, (_, i) =>
  i % 3 === 0 ? `v1.${i}.0` : i % 3 === 1 ? `build-${i}` : `${i}-alpine`,
);
const modes: RegistryMode[] = ["anonymous", "htpasswd", "token"];
const registries = new Map<RegistryMode, RegistryHandle>();
let dir: string;

/** A docker config for the registry's first user (an empty one in anonymous mode). */
function dockerConfig(reg: RegistryHandle): string {
  const file = join(dir, `config-${reg.mode}.json`);
  const first = Object.entries(reg.users)[0];
  const auths = first
    ? { [reg.host]: { auth: Buffer.from(`${first[0]}:${first[1]}`).toString("base64") } }
    : {};
  writeFileSync(file, JSON.stringify({ auths }));
  return file;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "regscan-cli-tags-"));
  await Promise.all(
    modes.map(async (mode) => {
      const reg = await startRegistry({ mode });
      const b = new ImageBuilder(reg);
      try {
        await b.tagMany("many", { tags: TAGS, manifest: await b.pushImage("many", undefined) });
        await b.pushImage("few", ["b", "a", "c"]);
      } finally {
        await b.close();
      }
      registries.set(mode, reg);
    }),
  );
});

after(async () => {
  await Promise.all([...registries.values()].map((r) => r.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** `text` as a regular expression that matches it literally. */
const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function registry(mode: RegistryMode): RegistryHandle {
  const reg = registries.get(mode);
  if (!reg) throw new Error(`no ${mode} registry`);
  return reg;
}

for (const mode of modes) {
  describe(`regscan tags (${mode})`, () => {
    const asProcess = mode === "token";
    test(`5,000 tags: exactly what skopeo list-tags prints, in its order${asProcess ? " (the real process)" : ""}`, async () => {
      const reg = registry(mode);
      const run = asProcess ? runCli : runCliInProcess;
      const [ours, theirs] = await Promise.all([
        run([
          "tags",
          `${reg.host}/many`,
          "--insecure-host",
          reg.host,
          "--docker-config",
          dockerConfig(reg),
        ]),
        skopeo(reg, ["list-tags"], `${reg.host}/many`),
      ]);
      assert.equal(ours.code, 0, ours.stderr);
      const skopeoTags = (JSON.parse(theirs.toString()) as { Tags: string[] }).Tags;
      assert.equal(skopeoTags.length, 5000);
      assert.deepEqual(ours.stdout.split("\n").slice(0, -1), skopeoTags);
    });

    test("--output json: the canonical name and the tags", async () => {
      const reg = registry(mode);
      const r = await runCliInProcess([
        "tags",
        `${reg.host}/few`,
        "-o",
        "json",
        "--insecure-host",
        reg.host,
        "--docker-config",
        dockerConfig(reg),
      ]);
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(r.stdout) as { name: string; tags: string[] };
      assert.deepEqual(Object.keys(json), ["name", "tags"]);
      assert.equal(json.name, `${reg.host}/few`);
      // The registry's own order (distribution 2.8: its storage's directory order).
      assert.deepEqual([...json.tags].sort(), ["a", "b", "c"]);
    });
  });
}

describe("regscan tags failures", () => {
  for (const mode of modes) {
    test(`a repository that does not exist (${mode}): exit 1, one line on stderr, no stack`, async () => {
      const reg = registry(mode);
      const r = await runCliInProcess([
        "tags",
        `${reg.host}/nothing/here`,
        "--insecure-host",
        reg.host,
        "--docker-config",
        dockerConfig(reg),
      ]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      // The same code in every auth mode: credentials (or none) do not hide a missing name.
      assert.match(
        r.stderr,
        new RegExp(
          `^regscan: repository name unknown: ${literally(reg.host)}/nothing/here \\(HTTP 404; NAME_UNKNOWN: [^\n]*\\)\n$`,
        ),
      );
    });
  }

  for (const mode of ["htpasswd", "token"] as const) {
    test(`credentials refused (${mode}): exit 1 naming the host and UNAUTHORIZED`, async () => {
      const reg = registry(mode);
      const r = await runCliInProcess([
        "tags",
        `${reg.host}/few`,
        "--insecure-host",
        reg.host,
        "--docker-config",
        dockerConfig(registry("anonymous")),
      ]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      assert.match(
        r.stderr,
        new RegExp(
          `^regscan: unauthorized: ${literally(reg.host)}/few \\(HTTP 401; UNAUTHORIZED: [^\n]*\\)\n$`,
        ),
      );
    });
  }

  test("a host not listed as insecure is not spoken to over plain HTTP", async () => {
    const reg = registry("anonymous");
    reg.resetRequests();
    const r = await runCliInProcess([
      "tags",
      `${reg.host}/few`,
      "--docker-config",
      dockerConfig(reg),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^regscan: TLS handshake failed/);
    assert.deepEqual(reg.requests(), []);
  });

  test("bad input: a tag where a repository is wanted, an unreadable --docker-config", async () => {
    const withTag = await runCliInProcess(["tags", "alpine:3.19"]);
    assert.equal(withTag.code, 1);
    assert.match(
      withTag.stderr,
      /^regscan: invalid image reference "alpine:3\.19": a repository name cannot have a tag\n$/,
    );
    const noConfig = await runCliInProcess([
      "tags",
      "127.0.0.1:1/x",
      "--docker-config",
      join(dir, "missing.json"),
    ]);
    assert.equal(noConfig.code, 1);
    assert.match(noConfig.stderr, /missing\.json/);
    assert.doesNotMatch(noConfig.stderr, /\n {4}at /);
  });
});
