import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import { WebhookSecretError } from "../../../src/server/webhooks/errors.js";
import { readWebhookSecret, WebhookSecret } from "../../../src/server/webhooks/secret.js";

const VALUE = "s3cret-Value-8812";

describe("webhook secrets", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "regscan-secret-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("from env: and file: (trailing newline dropped)", async () => {
    const fromEnv = await readWebhookSecret("env:HOOK", { HOOK: VALUE });
    assert.equal(fromEnv.equals(VALUE), true);
    await writeFile(join(dir, "s"), `${VALUE}\n`);
    const fromFile = await readWebhookSecret(`file:${join(dir, "s")}`);
    assert.equal(fromFile.equals(VALUE), true);
    assert.equal(fromFile.equals(`${VALUE}\n`), false);
    assert.equal(fromFile.equals(undefined), false);
    assert.equal(fromFile.equals(""), false);
  });

  test("never shown by toString, JSON or inspect", async () => {
    const secret = await readWebhookSecret("env:HOOK", { HOOK: VALUE });
    for (const shown of [
      String(secret),
      JSON.stringify({ secret }),
      inspect(secret),
      `${secret}`,
    ]) {
      assert.ok(!shown.includes(VALUE), shown);
    }
  });

  test("sources that cannot be used are typed errors naming the source, not the value", async () => {
    const big = join(dir, "big");
    await writeFile(big, "x".repeat(70_000));
    await writeFile(join(dir, "empty"), "\n");
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const cases: Array<[string, RegExp]> = [
      ["env:MISSING", /env:MISSING: the variable is not set/],
      [`file:${join(dir, "nope")}`, /cannot read: ENOENT/],
      [`file:${dir}`, /not a regular file/],
      [`file:${fifo}`, /not a regular file \(a FIFO\)/],
      ["file:/dev/zero", /not a regular file \(a character device\)/],
      [`file:${big}`, /larger than the 64 KiB allowed/],
      [`file:${join(dir, "empty")}`, /empty/],
      [VALUE, /expected "env:NAME" or "file:PATH"/],
    ];
    for (const [source, message] of cases) {
      await assert.rejects(readWebhookSecret(source, {}), (err: unknown) => {
        assert.ok(err instanceof WebhookSecretError);
        assert.equal(err.code, "WEBHOOK_SECRET_UNAVAILABLE");
        assert.match(err.message, message);
        assert.ok(
          !err.message.includes(VALUE),
          "a mistyped secret given as source is not repeated",
        );
        return true;
      });
    }
  });

  test("equal-length comparison whatever is given", () => {
    const secret = new WebhookSecret("abc");
    assert.equal(secret.equals("abc"), true);
    assert.equal(secret.equals("ab"), false);
    assert.equal(secret.equals("abcd".repeat(1000)), false);
  });
});
