import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import pino from "pino";
import { ImagesFileSource } from "../../src/sources/images-file-source.js";
import { waitFor } from "../support/processes.js";

const dir = mkdtempSync(join(tmpdir(), "regscan-images-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const logs: string[] = [];
const logger = pino({ level: "info" }, { write: (s: string) => logs.push(s) });

describe("ImagesFileSource", () => {
  test("reads references, skipping comments, blanks and bad lines", async () => {
    const path = join(dir, "images.txt");
    writeFileSync(
      path,
      "# watched\nalpine:3.19\n\nghcr.io/org/app@sha256:" +
        "b".repeat(64) +
        "  # pinned\nNOT VALID\nalpine\n",
    );
    const source = new ImagesFileSource(path, { logger, pollMs: 60_000 });
    try {
      await source.start();
      assert.deepEqual(
        [...(await source.images()).keys()],
        ["docker.io/library/alpine", "ghcr.io/org/app"],
      );
      assert.match(logs.join(""), /"line":5.*not an image reference/);
    } finally {
      source.close();
    }
  });

  test("follows edits and atomic replacements through watching", async () => {
    const path = join(dir, "watched.txt");
    writeFileSync(path, "alpine\n");
    const source = new ImagesFileSource(path, { logger, pollMs: 60_000 });
    const changes: string[][] = [];
    source.onChange((names) => changes.push(names));
    try {
      await source.start();
      writeFileSync(path, "alpine\nbusybox\n");
      await waitFor(async () => source.names().includes("docker.io/library/busybox"), {
        what: "an edit to be seen",
        timeoutMs: 5_000,
      });
      const tmp = join(dir, "watched.tmp");
      writeFileSync(tmp, "nginx\n");
      renameSync(tmp, path);
      await waitFor(async () => source.names().join() === "docker.io/library/nginx", {
        what: "a replacement to be seen",
        timeoutMs: 5_000,
      });
      assert.ok(changes.length >= 2);
    } finally {
      source.close();
    }
  });

  test("polling notices changes when watching does not, and a removed file empties the list", async () => {
    const sub = mkdtempSync(join(dir, "poll-"));
    const path = join(sub, "images.txt");
    writeFileSync(path, "alpine\n");
    // Without watching, as on a file system without change events: only the poll can see it.
    const source = new ImagesFileSource(path, { logger, pollMs: 100, watch: false });
    try {
      await source.start();
      writeFileSync(path, "alpine\nredis:7\n");
      await waitFor(async () => source.names().length === 2, {
        what: "the poll to see the edit",
        timeoutMs: 5_000,
      });
      unlinkSync(path);
      await waitFor(async () => source.names().length === 0, {
        what: "the poll to see the removal",
        timeoutMs: 5_000,
      });
    } finally {
      source.close();
    }
  });

  test("a file over the size bound is refused, keeping the previous list", async () => {
    const path = join(dir, "big.txt");
    writeFileSync(path, "alpine\n");
    const source = new ImagesFileSource(path, { logger, pollMs: 100, maxBytes: 64 });
    try {
      await source.start();
      writeFileSync(path, "busybox\n".repeat(20));
      await waitFor(async () => logs.join("").includes("images file too large"), {
        what: "the size warning",
        timeoutMs: 5_000,
      });
      assert.deepEqual(source.names(), ["docker.io/library/alpine"]);
    } finally {
      source.close();
    }
  });
});
