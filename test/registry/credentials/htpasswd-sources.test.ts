/**
 * A real htpasswd registry accepts credentials found through each source: docker config
 * `auths`, a credential helper on PATH, `imageCredsWithDefaults` and a pull-secret file.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import { ImageName } from "../../../src/image/ref.js";
import { CredentialHelperRunner } from "../../../src/registry/credentials/credential-helper.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { imageCredsWithDefaults } from "../../../src/registry/credentials/image-creds.js";
import { loadPullSecrets } from "../../../src/registry/credentials/pull-secrets.js";
import { RemoteClientFactory } from "../../../src/registry/factory.js";
import { ImageBuilder } from "../../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../../support/registry.js";
import { captureLogger } from "./capture-logger.js";
import { type HelperDir, makeHelpers } from "./helper-scripts.js";

const PASSWORD = `htpasswd-Secret-${process.pid}-q7`;
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("a real htpasswd registry accepts credentials from every source", () => {
  let registry: RegistryHandle;
  let dir: string;
  let helpers: HelperDir;
  let factory: RemoteClientFactory;
  const log = captureLogger();
  const errors: string[] = [];
  const printed: string[] = [];
  let name: ImageName;

  before(async () => {
    registry = await startRegistry({ mode: "htpasswd", users: { alice: PASSWORD } });
    const builder = new ImageBuilder(registry);
    await builder.pushImage("team/app", ["v1", "v2"]);
    await builder.close();
    dir = await mkdtemp(join(tmpdir(), "regscan-cred-sources-"));
    helpers = await makeHelpers({ [registry.host]: { username: "alice", secret: PASSWORD } });
    factory = new RemoteClientFactory({
      insecureHosts: [registry.host],
      logger: log.logger,
      trace: true,
    });
    name = new ImageName(registry.host, "team/app");
  });
  after(async () => {
    await factory?.close();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
    if (helpers) await rm(helpers.dir, { recursive: true, force: true });
  });

  const tagsWith = async (creds: Credentials) => {
    printed.push(String(creds), JSON.stringify(creds), inspect(creds, { depth: 5 }));
    const cred = await creds.resolve(registry.host);
    printed.push(String(cred), String(JSON.stringify(cred)), inspect(cred));
    try {
      return (await factory.clientFor(name, creds).tags()).sort();
    } catch (err) {
      errors.push(String(err), inspect(err));
      throw err;
    }
  };

  it("without credentials, or with a wrong password, the registry refuses (the test can fail)", async () => {
    await assert.rejects(tagsWith(Credentials.none()));
    const wrong = Credentials.parse(
      "wrong",
      JSON.stringify({ auths: { [registry.host]: { auth: b64("alice:nope") } } }),
    );
    await assert.rejects(tagsWith(wrong));
  });

  it("docker config auths", async () => {
    const creds = Credentials.parse(
      join(dir, "config.json"),
      JSON.stringify({
        auths: { [`http://${registry.host}/v2/`]: { auth: b64(`alice:${PASSWORD}`) } },
      }),
    );
    assert.deepEqual(await tagsWith(creds), ["v1", "v2"]);
  });

  it("a docker-credential-* helper on PATH (credsStore)", async () => {
    const runner = new CredentialHelperRunner({
      env: { ...process.env, PATH: `${helpers.dir}:${process.env.PATH ?? ""}` },
    });
    const creds = Credentials.parse("helper-config", JSON.stringify({ credsStore: "good" }), {
      helperRunner: runner,
    });
    assert.deepEqual(await tagsWith(creds), ["v1", "v2"]);
    assert.ok((await helpers.runs()).some((l) => l === `good get ${registry.host}`));
  });

  it("imageCredsWithDefaults", async () => {
    const path = join(dir, "defaults.json");
    await writeFile(
      path,
      JSON.stringify({ auths: { [registry.host]: { username: "alice", password: PASSWORD } } }),
    );
    const lookup = await imageCredsWithDefaults(
      () => new Map([[name.toString(), Credentials.none()]]),
      path,
    );
    const creds = (await lookup()).get(name.toString());
    assert.ok(creds);
    assert.deepEqual(await tagsWith(creds), ["v1", "v2"]);
  });

  it("a mounted Kubernetes pull-secret file", async () => {
    const secretDir = join(dir, "pull-secrets", "regcred");
    await mkdir(secretDir, { recursive: true });
    await writeFile(
      join(secretDir, ".dockerconfigjson"),
      JSON.stringify({ auths: { [registry.host]: { auth: b64(`alice:${PASSWORD}`) } } }),
    );
    const creds = await loadPullSecrets(join(dir, "pull-secrets"));
    assert.deepEqual(await tagsWith(creds), ["v1", "v2"]);
  });

  it("no password appears in logs, errors or printed credentials", () => {
    assert.ok(log.lines.length > 0, "trace logging captured something");
    assert.ok(errors.length > 0 && printed.length > 0);
    for (const text of [log.text(), ...errors, ...printed]) {
      assert.ok(!text.includes(PASSWORD), text.slice(0, 200));
      assert.ok(!text.includes(b64(`alice:${PASSWORD}`)), text.slice(0, 200));
    }
  });
});
