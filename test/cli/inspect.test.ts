/**
 * `regscan inspect --output json` as a user runs it, against the real registry in
 * anonymous, htpasswd and token modes: for schema 2, OCI manifest, OCI index and Docker
 * manifest list (default platform, `--platform linux/arm64`, `linux/arm/v7`) the digest is
 * the sha256 of what `skopeo inspect --raw` prints, and created time and labels are the
 * chosen config's. Also the text summary, excluded platforms and failures. The CLI's `main`
 * runs in this process; the readable summary by digest runs the real process (the command's
 * smoke test).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli, runCliInProcess } from "../support/cli.js";
import { ImageBuilder, type PushedImage, type PushedIndex } from "../support/image-builder.js";
import { type RegistryHandle, type RegistryMode, startRegistry } from "../support/registry.js";
import { skopeo } from "./skopeo.js";

interface Fixture {
  reg: RegistryHandle;
  config: string;
  schema2: PushedImage;
  oci: PushedImage;
  index: PushedIndex;
  list: PushedIndex;
}

const modes: RegistryMode[] = ["anonymous", "htpasswd", "token"];
const fixtures = new Map<RegistryMode, Fixture>();
let dir: string;

function platforms(kind: string) {
  return [
    {
      os: "linux",
      architecture: "amd64",
      created: "2021-01-01T01:01:01Z",
      labels: { arch: `${kind}-amd64` },
    },
    {
      os: "linux",
      architecture: "arm64",
      variant: "v8",
      created: "2021-02-02T02:02:02Z",
      labels: { arch: `${kind}-arm64` },
    },
    {
      os: "linux",
      architecture: "arm",
      variant: "v7",
      created: "2021-03-03T03:03:03Z",
      labels: { arch: `${kind}-armv7` },
    },
  ];
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "regscan-cli-inspect-"));
  await Promise.all(
    modes.map(async (mode) => {
      const reg = await startRegistry({ mode });
      const b = new ImageBuilder(reg);
      try {
        const config = join(dir, `config-${mode}.json`);
        const first = Object.entries(reg.users)[0];
        const auths = first ? { [reg.host]: { username: first[0], password: first[1] } } : {};
        writeFileSync(config, JSON.stringify({ auths }));
        fixtures.set(mode, {
          reg,
          config,
          schema2: await b.pushImage("app", ["schema2"], {
            created: "2020-10-10T10:10:10Z",
            labels: { kind: "schema2", "org.example.mode": mode },
          }),
          oci: await b.pushImage("app", ["oci"], {
            format: "oci",
            created: "2020-11-11T11:11:11.5Z",
            labels: { kind: "oci" },
          }),
          index: await b.pushIndex("app", ["index"], { platforms: platforms("index") }),
          list: await b.pushIndex("app", ["list"], {
            format: "docker",
            platforms: platforms("list"),
          }),
        });
      } finally {
        await b.close();
      }
    }),
  );
});

after(async () => {
  await Promise.all([...fixtures.values()].map((f) => f.reg.stop()));
  rmSync(dir, { recursive: true, force: true });
});

function fixture(mode: RegistryMode): Fixture {
  const fx = fixtures.get(mode);
  if (!fx) throw new Error(`no ${mode} fixture`);
  return fx;
}

function inspectArgs(fx: Fixture, ref: string, extra: string[] = []): string[] {
  return [
    "inspect",
    `${fx.reg.host}/app${ref}`,
    "--insecure-host",
    fx.reg.host,
    "--docker-config",
    fx.config,
    ...extra,
  ];
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

for (const mode of modes) {
  describe(`regscan inspect --output json (${mode})`, () => {
    test("every manifest kind and platform: skopeo's digest, the config's created time and labels", async () => {
      const fx = fixture(mode);
      const cases: {
        tag: string;
        platform?: string;
        image: PushedImage;
        top: PushedImage | PushedIndex;
      }[] = [
        { tag: "schema2", image: fx.schema2, top: fx.schema2 },
        { tag: "oci", image: fx.oci, top: fx.oci },
        { tag: "index", image: fx.index.image("linux/amd64"), top: fx.index },
        {
          tag: "index",
          platform: "linux/arm64",
          image: fx.index.image("linux/arm64/v8"),
          top: fx.index,
        },
        {
          tag: "index",
          platform: "linux/arm/v7",
          image: fx.index.image("linux/arm/v7"),
          top: fx.index,
        },
        { tag: "list", image: fx.list.image("linux/amd64"), top: fx.list },
        {
          tag: "list",
          platform: "linux/arm64",
          image: fx.list.image("linux/arm64/v8"),
          top: fx.list,
        },
        {
          tag: "list",
          platform: "linux/arm/v7",
          image: fx.list.image("linux/arm/v7"),
          top: fx.list,
        },
      ];
      const raw = new Map<string, string>();
      await Promise.all(
        ["schema2", "oci", "index", "list"].map(async (t) =>
          raw.set(t, sha256(await skopeo(fx.reg, ["inspect", "--raw"], `${fx.reg.host}/app:${t}`))),
        ),
      );
      // In-process (the same program as the binary) keeps 24 runs quick; the child-process
      // run below covers the real entry point.
      const results = await Promise.all(
        cases.map((c) =>
          runCliInProcess(
            inspectArgs(fx, `:${c.tag}`, [
              "-o",
              "json",
              ...(c.platform ? ["--platform", c.platform] : []),
            ]),
          ),
        ),
      );
      cases.forEach((c, i) => {
        const r = results[i];
        assert.ok(r);
        const what = `${c.tag} ${c.platform ?? "default"}`;
        assert.equal(r.code, 0, `${what}: ${r.stderr}`);
        const json = JSON.parse(r.stdout) as Record<string, unknown>;
        assert.equal(json.digest, raw.get(c.tag), `${what}: digest is skopeo's`);
        assert.equal(json.digest, c.top.digest);
        assert.equal(json.ref, `${fx.reg.host}/app:${c.tag}`);
        assert.equal(json.imageID, c.image.config.digest, what);
        assert.equal(json.mediaType, c.top.mediaType);
        assert.equal(
          Date.parse(String(json.createdAt)),
          Date.parse(c.image.created ?? ""),
          `${what}: created`,
        );
        assert.deepEqual(json.labels, c.image.labels, `${what}: labels`);
        assert.deepEqual(json.platform, c.image.platform, `${what}: platform`);
        if (c.top !== c.image) {
          assert.equal(json.platformDigest, c.image.digest, `${what}: platform digest`);
          assert.equal((json.platforms as unknown[]).length, 3);
        } else {
          assert.equal(json.platformDigest, undefined);
        }
      });
    });
  });
}

describe("regscan inspect", () => {
  test("by digest, and the readable summary (the real process)", async () => {
    const fx = fixture("token");
    const byDigest = await runCli(
      inspectArgs(fx, `@${fx.list.digest}`, ["--platform", "linux/arm/v7"]),
    );
    assert.equal(byDigest.code, 0, byDigest.stderr);
    assert.match(
      byDigest.stdout,
      new RegExp(`^Reference: +${fx.reg.host.replace(/\./g, "\\.")}/app@${fx.list.digest}$`, "m"),
    );
    assert.match(
      byDigest.stdout,
      new RegExp(`^Platform digest: +${fx.list.image("linux/arm/v7").digest}$`, "m"),
    );
    assert.match(byDigest.stdout, /^Platform: +linux\/arm\/v7$/m);
    assert.match(byDigest.stdout, /^Platforms: +linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7$/m);
    assert.match(byDigest.stdout, /^ {2}arch=list-armv7$/m);
  });

  test("a platform the index lacks: excludedReason in JSON, exit 0", async () => {
    const fx = fixture("anonymous");
    const r = await runCliInProcess(
      inspectArgs(fx, ":index", ["-o", "json", "--platform", "linux/s390x"]),
    );
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(json), ["ref", "excludedReason"]);
    assert.match(String(json.excludedReason), /linux\/s390x/);
  });

  test("failures: unknown tag, bad platform, bad reference — exit 1 with one line", async () => {
    const fx = fixture("htpasswd");
    const [missing, platform, ref] = await Promise.all([
      runCliInProcess(inspectArgs(fx, ":nope")),
      runCliInProcess(inspectArgs(fx, ":oci", ["--platform", "linux"])),
      runCliInProcess(["inspect", "team/UPPER:tag"]),
    ]);
    for (const r of [missing, platform, ref]) {
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /^regscan: [^\n]+\n$/);
    }
    assert.match(missing.stderr, /manifest unknown: .*app:nope/);
    assert.match(platform.stderr, /--platform/);
    assert.match(ref.stderr, /invalid image reference "team\/UPPER:tag"/);
  });
});
