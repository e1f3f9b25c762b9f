import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError } from "../../src/config/errors.js";
import { loadConfig } from "../../src/config/load.js";
import { runCli, runCliInProcess } from "../support/cli.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "regscan-webhooks-config-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("webhook receivers in the configuration", () => {
  test("--webhook and --webhook-secret add receivers over the file's, keeping its settings", async () => {
    const file = join(dir, "hooks.yaml");
    writeFileSync(file, "webhooks:\n  acr: { secret: env:ACR_HOOK, header: X-Regscan-Token }\n");
    const { config } = await loadConfig({
      file,
      flags: {
        webhook: ["distribution", "github"],
        webhookSecret: ["distribution=env:DIST_HOOK", "github=file:/run/gh"],
      },
    });
    assert.deepEqual(config.webhooks?.acr?.header, "X-Regscan-Token");
    assert.equal(config.webhooks?.distribution?.secret, "env:DIST_HOOK");
    assert.equal(config.webhooks?.github?.secret, "file:/run/gh");
    assert.equal(config.server.webhookWindow, 250);
  });

  test("REGSCAN_WEBHOOKS and REGSCAN_WEBHOOK_SECRETS do the same", async () => {
    const { config } = await loadConfig({
      env: {
        REGSCAN_WEBHOOKS: "distribution,quay",
        REGSCAN_WEBHOOK_SECRETS: "distribution=env:D,quay=file:/q",
        REGSCAN_WEBHOOK_WINDOW: "100ms",
      },
    });
    assert.equal(config.webhooks?.distribution?.secret, "env:D");
    assert.equal(config.webhooks?.quay?.secret, "file:/q");
    assert.equal(config.server.webhookWindow, 100);
  });

  test("a receiver turned on by flag without a secret names the flag", async () => {
    await assert.rejects(
      loadConfig({ flags: { webhook: ["harbor"] } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /flag --webhook/.test(err.message) &&
        /harbor receiver has no secret/.test(err.message),
    );
  });

  test("an unknown kind names the flag and the kinds there are", async () => {
    await assert.rejects(
      loadConfig({ flags: { webhook: ["gitlab"] } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /flag --webhook/.test(err.message) &&
        /unknown webhook kind "gitlab": expected one of distribution, harbor/.test(err.message),
    );
  });

  test("a malformed --webhook-secret never repeats its value", async () => {
    const secret = "s3cr3t-value-never-shown-991";
    await assert.rejects(
      loadConfig({ flags: { webhook: ["github"], webhookSecret: [`${secret}`] } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /flag --webhook-secret/.test(err.message) &&
        !err.message.includes(secret),
    );
  });

  test("config check lists the receivers on and where their secrets come from, never the secrets", async () => {
    const secretFile = join(dir, "gh-secret");
    const secret = "gh-hook-secret-7f3a91";
    writeFileSync(secretFile, `${secret}\n`);
    // Through main in this process; the serve case below stays a process with a deadline.
    const r = await runCliInProcess(
      [
        "config",
        "check",
        "--webhook",
        "distribution",
        "--webhook-secret",
        "distribution=env:DIST_HOOK_SECRET",
        "--webhook",
        "github",
        "--webhook-secret",
        `github=file:${secretFile}`,
      ],
      { env: { DIST_HOOK_SECRET: "dist-secret-0042ab" } },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /webhook receivers on/);
    assert.match(r.stdout, /distribution: bearer token from env:DIST_HOOK_SECRET/);
    assert.match(r.stdout, /github: HMAC-SHA256 signature, key from file:/);
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
    assert.ok(!r.stdout.includes("dist-secret-0042ab") && !r.stderr.includes("dist-secret-0042ab"));
    // Only the gar receiver reads the OIDC issuer settings; the others do not show them.
    assert.ok(!/issuer|jwksUrl/.test(r.stdout), r.stdout);
  });

  test("serve stops at start-up when a receiver's secret cannot be read, naming its source", async () => {
    const r = await runCli(
      [
        "serve",
        "--image",
        "localhost:5999/team/app",
        "--cache",
        "memory:",
        "--listen",
        "127.0.0.1:0",
        "--webhook",
        "distribution",
        "--webhook-secret",
        "distribution=env:REGSCAN_TEST_UNSET_HOOK",
      ],
      { env: { REGSCAN_TEST_UNSET_HOOK: undefined }, timeoutMs: 60_000 },
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /webhook secret env:REGSCAN_TEST_UNSET_HOOK: the variable is not set/);
  });
});
