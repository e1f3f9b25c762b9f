/**
 * No secret escapes: with trace logging on at every level, the passwords, the Basic
 * header, identity tokens and every token the token server issued are searched for in the
 * captured logs, in error messages (and their util.inspect), and in toString()/JSON of the
 * objects a user holds — through the library and through the CLI with --trace.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import { inspect } from "node:util";
import pino from "pino";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { type CliResult, runCliInProcess } from "../support/cli.js";
import { type FaultHook, withFault } from "../support/faults.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";

const PASSWORD = "Tr0ub4dor-secret-pw";
let token: RegistryHandle;
let basic: RegistryHandle;
let dir: string;

before(async () => {
  [token, basic] = await Promise.all([
    startRegistry({ mode: "token", users: { alice: PASSWORD } }),
    startRegistry({ mode: "htpasswd", users: { alice: PASSWORD } }),
  ]);
  for (const reg of [token, basic]) {
    const b = new ImageBuilder(reg);
    await b.pushIndex("app", ["v1"]);
    await b.close();
  }
  dir = mkdtempSync(join(tmpdir(), "regscan-secrets-"));
});

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await Promise.all([token.stop(), basic.stop()]);
});

function secrets(): string[] {
  const issued = (token.tokenServer?.requests() ?? []).flatMap((r) => [r.token, r.refreshToken]);
  const basicHeader = Buffer.from(`alice:${PASSWORD}`).toString("base64");
  return [PASSWORD, basicHeader, ...issued].filter(
    (s): s is string => typeof s === "string" && s.length >= 8,
  );
}

function assertClean(where: string, text: string): void {
  for (const secret of secrets()) {
    assert.ok(!text.includes(secret), `${where} contains a secret (${secret.slice(0, 4)}…)`);
  }
}

function capture(): { logger: pino.Logger; text: () => string } {
  const chunks: string[] = [];
  const logger = pino(
    { level: "trace" },
    new Writable({
      write(chunk, _e, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
  );
  return { logger, text: () => chunks.join("") };
}

test("library: trace logs, errors and toString() carry no password or token", async () => {
  const { logger, text } = capture();
  const out: string[] = [];
  for (const reg of [token, basic]) {
    const creds = Credentials.parse(
      "config.json",
      JSON.stringify({ auths: { [reg.host]: { username: "alice", password: PASSWORD } } }),
    );
    const f = new RemoteClientFactory({ insecureHosts: [reg.host], trace: true, logger });
    try {
      const client = f.clientFor(parseImageName(`${reg.host}/app`), creds);
      await client.tags();
      out.push(JSON.stringify(await client.manifest("v1")));
      await client.head("v1");
      // A token the registry refuses, then one that never worked: both end as errors.
      const refused: FaultHook = (req) =>
        req.path.endsWith("/manifests/broken")
          ? {
              status: 401,
              body: {
                errors: [{ code: "UNAUTHORIZED", message: `bad ${req.headers.authorization}` }],
              },
            }
          : undefined;
      const failed = await withFault(reg, refused, () =>
        client.manifest("broken").then(
          () => assert.fail("expected an error"),
          (e: unknown) => e,
        ),
      );
      out.push(String(failed), inspect(failed, { depth: 10 }), JSON.stringify(failed));
      const wrong = Credentials.parse(
        "config.json",
        JSON.stringify({
          auths: { [reg.host]: { username: "alice", password: `${PASSWORD}-wrong` } },
        }),
      );
      const denied = await f
        .clientFor(parseImageName(`${reg.host}/app`), wrong)
        .tags()
        .then(
          () => assert.fail("expected an error"),
          (e: unknown) => e,
        );
      out.push(String(denied), inspect(denied, { depth: 10 }));
      out.push(String(creds), inspect(creds, { depth: 10 }), JSON.stringify(creds) ?? "");
      out.push(String(client), inspect(client, { depth: 10 }), inspect(f, { depth: 10 }));
      const hostCred = await creds.resolve(reg.host);
      out.push(String(hostCred), inspect(hostCred, { depth: 10 }), JSON.stringify(hostCred) ?? "");
    } finally {
      await f.close();
    }
  }
  assert.ok(secrets().length >= 3, "the test knows tokens to look for");
  assert.match(text(), /http request/, "trace lines were captured");
  assertClean("trace log", text());
  assertClean("errors and toString()", out.join("\n"));
});

test("CLI with --trace: stdout and stderr carry no password or token", async () => {
  const configFile = join(dir, "config.json");
  const auth = Buffer.from(`alice:${PASSWORD}`).toString("base64");
  writeFileSync(
    configFile,
    JSON.stringify({ auths: { [token.host]: { auth }, [basic.host]: { auth } } }),
  );
  // In this process through the CLI's main (its log lines go to the run's own stderr): the
  // commands' process-level smoke tests are in test/cli/. One after another: each run is short.
  const runs: CliResult[] = [];
  for (const args of [token, basic].flatMap((reg) => [
    [
      "inspect",
      `${reg.host}/app:v1`,
      "--trace",
      "--insecure-host",
      reg.host,
      "--docker-config",
      configFile,
    ],
    [
      "tags",
      `${reg.host}/app`,
      "--trace",
      "-o",
      "json",
      "--insecure-host",
      reg.host,
      "--docker-config",
      configFile,
    ],
    [
      "inspect",
      `${reg.host}/app:missing`,
      "--trace",
      "--insecure-host",
      reg.host,
      "--docker-config",
      configFile,
    ],
  ])) {
    runs.push(await runCliInProcess(args));
  }
  for (const r of runs) {
    assert.match(r.stderr, /http request/, `traced: ${r.stderr}`);
    assertClean("CLI output", r.stdout + r.stderr);
  }
  assert.deepEqual(
    runs.map((r) => r.code),
    [0, 0, 1, 0, 0, 1],
  );
});
