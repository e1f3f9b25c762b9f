/**
 * Cloud SDKs are loaded lazily: importing the credentials modules and resolving a
 * non-cloud host loads none of `@aws-sdk/*`, `google-auth-library`, `@azure/identity`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("./fixtures/lazy-load-child.ts", import.meta.url));

describe("cloud SDKs are loaded lazily", () => {
  let home: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), "regscan-lazy-"));
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it("credentials modules and a non-cloud resolve load no @aws-sdk, google-auth-library or @azure/identity; a Google host does", async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      METADATA_SERVER_DETECTION: "none",
      CLOUDSDK_CONFIG: home,
      HOME: home,
    };
    delete env.GOOGLE_APPLICATION_CREDENTIALS;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", CHILD], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d;
      });
      child.stderr.on("data", (d: Buffer) => {
        stderr += d;
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(stdout);
        else reject(new Error(`child exited ${code}: ${stderr}`));
      });
    });
    const result = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as {
      before: string[];
      after: string[];
      total: number;
    };
    assert.ok(result.total > 10, "the hook saw the modules being resolved");
    assert.deepEqual(result.before, [], "no cloud SDK before a cloud host is met");
    assert.ok(
      result.after.some((u) => u.includes("google-auth-library")),
      `meeting gcr.io loads google-auth-library: ${result.after.join(", ")}`,
    );
    assert.ok(!result.after.some((u) => u.includes("@aws-sdk") || u.includes("@azure/identity")));
  });
});
