/**
 * `regscan serve --images-file`: repositories added to the file are watched and scanned at
 * once, without waiting for the next lookup; removed ones stop being watched.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ImageBuilder } from "../support/image-builder.js";
import { cleanupAll, makeTempDir, waitFor } from "../support/processes.js";
import { startRegistry } from "../support/registry.js";
import { startServe } from "./serve-process.js";

after(cleanupAll);

describe("regscan serve with an images file", () => {
  test("follows the file", async () => {
    const registry = await startRegistry();
    const builder = new ImageBuilder(registry);
    await builder.pushImage("team/one", ["v1"]);
    await builder.pushImage("team/two", ["v1"]);
    await builder.close();
    const dir = makeTempDir("regscan-images-file-serve-");
    const file = join(dir, "images.txt");
    const one = `${registry.host}/team/one`;
    const two = `${registry.host}/team/two`;
    writeFileSync(file, `# watched images\n${one}:v1\n`);
    const serve = await startServe([
      "--images-file",
      file,
      "--images-file-poll",
      "200ms",
      "--insecure-host",
      registry.host,
      "--cache",
      "memory:",
    ]);
    await waitFor(async () => (await serve.fetchJson(`/v1/repositories/${one}`)).status === 200, {
      what: "the first repository",
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    assert.equal((await serve.fetchJson(`/v1/repositories/${two}`)).status, 404);
    writeFileSync(file, `${one}\n${two}\n`);
    // Well under the one-minute lookup interval: the change itself starts the scan.
    await waitFor(async () => (await serve.fetchJson(`/v1/repositories/${two}`)).status === 200, {
      what: "the added repository",
      timeoutMs: 15_000,
      intervalMs: 200,
    });
    writeFileSync(file, `${two}\n`);
    await waitFor(async () => (await serve.fetchJson(`/v1/repositories/${one}`)).status === 404, {
      what: "the removed repository to be unwatched",
      timeoutMs: 15_000,
      intervalMs: 200,
    });
    assert.equal((await serve.stop()).code, 0, serve.output());
    await registry.stop();
  });
});
