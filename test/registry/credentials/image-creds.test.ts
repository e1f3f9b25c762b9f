/**
 * `imageCredsWithDefaults` and friends: the up-front check of the file, defaults merged
 * under each image's own credentials, and the file read again on every call.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { CredentialsFileError } from "../../../src/registry/credentials/errors.js";
import { imageCredsWithDefaults } from "../../../src/registry/credentials/image-creds.js";
import { loadPullSecrets } from "../../../src/registry/credentials/pull-secrets.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const cfg = (auths: Record<string, string>) =>
  JSON.stringify({
    auths: Object.fromEntries(Object.entries(auths).map(([h, up]) => [h, { auth: b64(up) }])),
  });

describe("imageCredsWithDefaults", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "regscan-imgcreds-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("fails up front, naming the file, when it does not parse or cannot be read", async () => {
    const bad = join(dir, "bad.json");
    await writeFile(bad, "{ not json");
    await assert.rejects(
      imageCredsWithDefaults(() => new Map(), bad),
      (err: unknown) => {
        assert.ok(err instanceof CredentialsFileError);
        assert.equal(err.file, bad);
        return true;
      },
    );
    const missing = join(dir, "missing.json");
    await assert.rejects(
      imageCredsWithDefaults(() => new Map(), missing),
      (err: unknown) => {
        assert.ok(err instanceof CredentialsFileError);
        assert.match(err.message, /missing\.json/);
        return true;
      },
    );
  });

  it("merges the defaults under each image's own credentials; the image's own win", async () => {
    const path = join(dir, "config.json");
    await writeFile(path, cfg({ "ghcr.io": "default:1", "quay.io": "default:2" }));
    const own = Credentials.parse("own", cfg({ "ghcr.io": "own:3" }));
    const lookup = await imageCredsWithDefaults(
      () =>
        new Map([
          ["ghcr.io/a/b", own],
          ["quay.io/c/d", Credentials.none()],
        ]),
      path,
    );
    const images = await lookup();
    assert.equal(images.get("ghcr.io/a/b")?.credsFor("ghcr.io")?.username, "own");
    assert.equal(images.get("ghcr.io/a/b")?.credsFor("quay.io")?.username, "default");
    assert.equal(images.get("quay.io/c/d")?.credsFor("quay.io")?.username, "default");
  });

  it("reads the file again on every call, so a rotated secret is picked up", async () => {
    const path = join(dir, "rotating.json");
    await writeFile(path, cfg({ "ghcr.io": "u:old-pass" }));
    const lookup = await imageCredsWithDefaults(
      () => new Map([["ghcr.io/x/y", Credentials.none()]]),
      path,
    );
    assert.equal((await lookup()).get("ghcr.io/x/y")?.credsFor("ghcr.io")?.password, "old-pass");
    await writeFile(path, cfg({ "ghcr.io": "u:new-pass" }));
    assert.equal((await lookup()).get("ghcr.io/x/y")?.credsFor("ghcr.io")?.password, "new-pass");
    await writeFile(path, "{ half-writ");
    assert.equal(
      (await lookup()).get("ghcr.io/x/y")?.credsFor("ghcr.io")?.password,
      "new-pass",
      "a file that stops parsing keeps the last good defaults",
    );
  });
});

describe("Kubernetes pull-secret files", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "regscan-pullsecrets-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a directory per secret (as a secret volume mounts it) and flat files", async () => {
    const root = join(dir, "mixed");
    // secret volume layout: key file is a symlink into ..data/
    const vol = join(root, "regcred");
    await mkdir(join(vol, "..2026_11_26_16_00_00.1"), { recursive: true });
    await writeFile(
      join(vol, "..2026_11_26_16_00_00.1", ".dockerconfigjson"),
      cfg({ "ghcr.io": "vol:1" }),
    );
    await symlink("..2026_11_26_16_00_00.1", join(vol, "..data"));
    await symlink("..data/.dockerconfigjson", join(vol, ".dockerconfigjson"));
    const old = join(root, "oldcred");
    await mkdir(old, { recursive: true });
    await writeFile(join(old, ".dockercfg"), JSON.stringify({ "quay.io": { auth: b64("cfg:2") } }));
    await writeFile(
      join(root, "flat.json"),
      cfg({ "registry.example:5000": "flat:3", "ghcr.io": "flat:4" }),
    );
    const creds = await loadPullSecrets(root);
    assert.deepEqual(creds.hosts(), ["ghcr.io", "quay.io", "registry.example:5000"]);
    // sorted paths: flat.json < oldcred < regcred; the first to name a host wins
    assert.equal(creds.credsFor("ghcr.io")?.username, "flat");
    assert.equal(creds.credsFor("quay.io")?.username, "cfg");
    assert.equal(creds.credsFor("quay.io")?.provenance, `pull-secret:${join(old, ".dockercfg")}`);
  });

  it("reads a single secret mounted at the directory itself", async () => {
    const root = join(dir, "single");
    await mkdir(root, { recursive: true });
    await writeFile(join(root, ".dockerconfigjson"), cfg({ "ghcr.io": "one:1" }));
    assert.equal((await loadPullSecrets(root)).credsFor("ghcr.io")?.username, "one");
  });

  it("a broken secret file is an error naming it", async () => {
    const root = join(dir, "broken");
    await mkdir(join(root, "s"), { recursive: true });
    await writeFile(join(root, "s", ".dockerconfigjson"), "nope");
    await assert.rejects(loadPullSecrets(root), (err: unknown) => {
      assert.ok(err instanceof CredentialsFileError);
      assert.equal(err.file, join(root, "s", ".dockerconfigjson"));
      return true;
    });
  });
});

describe("readDockerConfigFile", () => {
  it("asks the cloud providers by default, and none when told", async () => {
    const dir = await mkdtemp(join(tmpdir(), "regscan-readcfg-"));
    try {
      const path = join(dir, "config.json");
      await writeFile(path, "{}");
      const { readDockerConfigFile } = await import(
        "../../../src/registry/credentials/image-creds.js"
      );
      assert.deepEqual((await readDockerConfigFile(path)).toJSON().cloudProviders, [
        "aws-ecr",
        "gcp",
        "azure",
      ]);
      assert.deepEqual(
        (await readDockerConfigFile(path, { cloudProviders: [] })).toJSON().cloudProviders,
        [],
      );
      await assert.rejects(readDockerConfigFile(join(dir, "nope.json")), (err: unknown) => {
        assert.ok(err instanceof CredentialsFileError);
        assert.equal((err.cause as NodeJS.ErrnoException).code, "ENOENT");
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("imageCredsWithCloudProviders", () => {
  it("adds the providers under each repository's own credentials", async () => {
    const { imageCredsWithCloudProviders } = await import(
      "../../../src/registry/credentials/image-creds.js"
    );
    const asked: string[] = [];
    const provider = {
      name: "test-cloud",
      matches: (h: string) => h.endsWith(".cloud.example"),
      credentialFor: async (h: string) => {
        asked.push(h);
        return Credentials.parse("x", cfg({ [h]: "cloud:pw" })).credsFor(h);
      },
    };
    const own = Credentials.parse("own", cfg({ "r.cloud.example": "own:1" }));
    const lookup = imageCredsWithCloudProviders(
      () =>
        new Map([
          ["r.cloud.example/a", own],
          ["s.cloud.example/b", Credentials.none()],
        ]),
      [provider],
    );
    const out = await lookup();
    assert.equal((await out.get("r.cloud.example/a")?.resolve("r.cloud.example"))?.username, "own");
    assert.equal(
      (await out.get("s.cloud.example/b")?.resolve("s.cloud.example"))?.username,
      "cloud",
    );
    assert.deepEqual(asked, ["s.cloud.example"]);
  });
});
