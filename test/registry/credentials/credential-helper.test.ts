/**
 * Docker credential helpers (scripts the tests put on PATH): stdin, identity tokens, caching,
 * timeouts and failures named by helper and host, and no secret in argv or errors.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { CredentialHelperRunner } from "../../../src/registry/credentials/credential-helper.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { CredentialHelperError } from "../../../src/registry/credentials/errors.js";
import { type HelperDir, makeHelpers } from "./helper-scripts.js";

const SECRET = "helper-secret-9d8c7b";
const TOKEN = "helper-identity-token-1a2b";
const STDERR_SECRET = "LEAKED-SECRET-123";

describe("docker credential helpers", () => {
  let h: HelperDir;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    h = await makeHelpers({
      "helper.example": { username: "alice", secret: SECRET },
      "token.example:5000": { username: "<token>", secret: TOKEN },
      "https://index.docker.io/v1/": { username: "hubuser", secret: SECRET },
    });
    env = { ...process.env, PATH: `${h.dir}:${process.env.PATH ?? ""}` };
  });
  after(async () => {
    await rm(h.dir, { recursive: true, force: true });
  });

  const config = (doc: object, runner: CredentialHelperRunner) =>
    Credentials.parse("/cfg/config.json", JSON.stringify(doc), { helperRunner: runner });

  it("credsStore: the helper gets the server URL on stdin and only `get` in argv", async () => {
    const runner = new CredentialHelperRunner({ env });
    const creds = config({ credsStore: "good" }, runner);
    const c = await creds.resolve("helper.example");
    assert.equal(c?.username, "alice");
    assert.equal(c?.password, SECRET);
    assert.equal(c?.provenance, "credential-helper:docker-credential-good");
    const runs = await h.runs();
    assert.deepEqual(runs.at(-1), "good get helper.example");
    assert.ok(!String(c).includes(SECRET));
  });

  it("asks for Docker Hub as https://index.docker.io/v1/", async () => {
    const creds = config({ credsStore: "good" }, new CredentialHelperRunner({ env }));
    assert.equal((await creds.resolve("registry-1.docker.io"))?.username, "hubuser");
  });

  it("a <token> username means an identity token", async () => {
    const creds = config(
      { credHelpers: { "token.example:5000": "good" } },
      new CredentialHelperRunner({ env }),
    );
    const c = await creds.resolve("token.example:5000");
    assert.equal(c?.identityToken, TOKEN);
    assert.equal(c?.username, undefined);
    assert.equal(c?.password, undefined);
  });

  it("credHelpers wins over credsStore for its host; static auths win over both", async () => {
    const runner = new CredentialHelperRunner({ env });
    const creds = config(
      {
        auths: { "static.example": { auth: Buffer.from("st:pw").toString("base64") } },
        credsStore: "broken",
        credHelpers: { "helper.example": "good" },
      },
      runner,
    );
    assert.equal((await creds.resolve("helper.example"))?.username, "alice");
    assert.equal((await creds.resolve("static.example"))?.username, "st");
    await assert.rejects(creds.resolve("other.example"), CredentialHelperError);
  });

  it("'credentials not found' is anonymous, not an error", async () => {
    const creds = config({ credsStore: "good" }, new CredentialHelperRunner({ env }));
    assert.equal(await creds.resolve("unknown.example"), undefined);
  });

  it("answers are cached for the configured time, then asked again", async () => {
    let now = 1_000_000;
    const runner = new CredentialHelperRunner({ env, cacheTtlMs: 30_000, clock: () => now });
    const creds = config({ credsStore: "good" }, runner);
    const count = async () => (await h.runs()).filter((l) => l.endsWith(" helper.example")).length;
    const before = await count();
    await Promise.all([creds.resolve("helper.example"), creds.resolve("helper.example")]);
    await creds.resolve("helper.example");
    assert.equal(await count(), before + 1, "one run for concurrent and repeated asks");
    now += 29_000;
    await creds.resolve("helper.example");
    assert.equal(await count(), before + 1);
    now += 2_000;
    await creds.resolve("helper.example");
    assert.equal(await count(), before + 2, "asked again after the TTL");
  });

  it("a missing helper is an error naming the helper and the host", async () => {
    const creds = config({ credsStore: "nonexistent" }, new CredentialHelperRunner({ env }));
    await assert.rejects(creds.resolve("some.example"), (err: unknown) => {
      assert.ok(err instanceof CredentialHelperError);
      assert.equal(err.code, "CREDENTIAL_HELPER_FAILED");
      assert.match(err.message, /docker-credential-nonexistent/);
      assert.match(err.message, /some\.example/);
      assert.match(err.message, /not found/);
      return true;
    });
  });

  it("a failing helper's error names helper, host and exit status, with a short excerpt", async () => {
    const creds = config({ credsStore: "broken" }, new CredentialHelperRunner({ env }));
    await assert.rejects(creds.resolve("some.example"), (err: unknown) => {
      assert.ok(err instanceof CredentialHelperError);
      assert.match(
        err.message,
        /docker-credential-broken for some\.example: exited with status 3: fatal: keychain is locked/,
      );
      return true;
    });
  });

  it("a helper printing a JSON answer before failing does not leak it into the error", async () => {
    const creds = config({ credsStore: "leaky" }, new CredentialHelperRunner({ env }));
    await assert.rejects(creds.resolve("some.example"), (err: unknown) => {
      assert.ok(err instanceof CredentialHelperError);
      assert.ok(!err.message.includes(STDERR_SECRET), err.message);
      return true;
    });
    const garbage = config({ credsStore: "garbage" }, new CredentialHelperRunner({ env }));
    await assert.rejects(garbage.resolve("some.example"), (err: unknown) => {
      assert.ok(err instanceof CredentialHelperError);
      assert.match(err.message, /not JSON/);
      assert.ok(!err.message.includes(STDERR_SECRET), err.message);
      return true;
    });
  });

  it("a helper that does not answer in time is killed and reported", async () => {
    const creds = config(
      { credsStore: "slow" },
      new CredentialHelperRunner({ env, timeoutMs: 300 }),
    );
    const started = Date.now();
    await assert.rejects(
      creds.resolve("some.example"),
      /docker-credential-slow for some\.example: no answer within 300 ms/,
    );
    assert.ok(Date.now() - started < 3000);
  });

  it("precedence: static auths, then the helper, then the cloud provider, then anonymous", async () => {
    const asked: string[] = [];
    const cloud = {
      name: "test-cloud",
      matches: (host: string) => host.endsWith(".example"),
      credentialFor: async (host: string) => {
        asked.push(host);
        return Credentials.parse(
          "c",
          JSON.stringify({ auths: { [host]: { username: "cloud", password: "x" } } }),
        ).credsFor(host);
      },
    };
    const creds = Credentials.parse(
      "/cfg/config.json",
      JSON.stringify({
        auths: { "static.example": { username: "st", password: "pw" } },
        credsStore: "good",
      }),
      { helperRunner: new CredentialHelperRunner({ env }), cloudProviders: [cloud] },
    );
    assert.equal((await creds.resolve("static.example"))?.username, "st");
    assert.equal((await creds.resolve("helper.example"))?.username, "alice");
    assert.equal((await creds.resolve("unknown.example"))?.username, "cloud", "helper had nothing");
    assert.deepEqual(asked, ["unknown.example"]);
    assert.equal(await creds.resolve("ghcr.io"), undefined, "no source: anonymous");
  });

  it("an aborted signal stops the helper", async () => {
    const creds = config({ credsStore: "slow" }, new CredentialHelperRunner({ env }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("caller gave up")), 100);
    await assert.rejects(creds.resolve("some.example", { signal: ac.signal }), /caller gave up/);
  });
});
