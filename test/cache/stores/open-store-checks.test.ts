/**
 * A store URL is checked before anything uses it: an empty URL is refused (not read as "the
 * default"), `sqlite:` makes no directory but the default one and refuses pseudo file
 * systems, FIFOs and directories without hanging, a reader can ask for an existing cache
 * only, and an unreachable Redis is reported by its connection error.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { openStore, StoreNotFoundError } from "../../../src/cache/open-store.js";
import { SqliteStore } from "../../../src/cache/stores/sqlite.js";
import { makeTempDir } from "../../support/processes.js";

const dir = makeTempDir("regscan-open-checks-");
const savedXdg = process.env.XDG_CACHE_HOME;
after(() => {
  if (savedXdg === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedXdg;
});

/** The store URL's refusal, within `ms` (the old code hung on some of these paths). */
async function refusal(url: string, ms = 2000): Promise<Error & { code?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${url}: still opening after ${ms} ms`)), ms);
  });
  try {
    const store = await Promise.race([openStore(url), late]);
    await store.close();
  } catch (err) {
    return err as Error & { code?: string };
  } finally {
    clearTimeout(timer);
  }
  assert.fail(`${url} was opened`);
}

describe("openStore checks", () => {
  it("refuses an empty URL instead of quietly using the default", async () => {
    for (const url of ["", "  "]) {
      const err = await refusal(url);
      assert.equal(err.code, "INVALID_STORE_URL");
      assert.match(
        err.message,
        /^invalid cache store URL "": the URL is empty; leave the setting out/,
      );
    }
  });

  it("sqlite: a missing directory is refused and not created", async () => {
    const missing = join(dir, "no", "such");
    const err = await refusal(`sqlite:${join(missing, "cache.db")}`);
    assert.equal(err.code, "INVALID_STORE_URL");
    assert.match(
      err.message,
      new RegExp(`the directory ${missing} does not exist; create it first`),
    );
    assert.equal(existsSync(join(dir, "no")), false);
  });

  it("sqlite: the default location's directory is made", async () => {
    process.env.XDG_CACHE_HOME = join(dir, "xdg");
    const store = await openStore(undefined);
    try {
      assert.ok(store instanceof SqliteStore);
      assert.equal(store.path, join(dir, "xdg", "regscan", "cache.db"));
    } finally {
      await store.close();
    }
  });

  it("sqlite: paths under /proc, /sys and /dev are refused at once, also through a link", async () => {
    const link = join(dir, "proc-link");
    symlinkSync("/proc/self", link);
    for (const path of [
      "/proc/self/fd/0",
      "/proc/cache.db",
      "/sys/cache.db",
      "/dev/null",
      "/dev/stdin",
      join(link, "cache.db"),
    ]) {
      const err = await refusal(`sqlite:${path}`);
      assert.equal(err.code, "INVALID_STORE_URL", path);
      assert.match(
        err.message,
        /is under \/(proc|sys|dev), which holds no files for a cache/,
        path,
      );
    }
  });

  it("sqlite: a FIFO or a directory in place of the file is refused without waiting", async () => {
    const fifo = join(dir, "fifo.db");
    execFileSync("mkfifo", [fifo]);
    const fifoErr = await refusal(`sqlite:${fifo}`);
    assert.match(fifoErr.message, /fifo\.db is not a regular file \(a FIFO\)/);
    const folder = join(dir, "folder.db");
    mkdirSync(folder);
    assert.match((await refusal(`sqlite:${folder}`)).message, /not a regular file \(a directory\)/);
  });

  it("mustExist: a missing sqlite file is STORE_NOT_FOUND and stays missing; an existing one opens", async () => {
    const path = join(dir, "reader.db");
    await assert.rejects(openStore(`sqlite:${path}`, { mustExist: true }), (err: unknown) => {
      assert.ok(err instanceof StoreNotFoundError);
      assert.equal(err.code, "STORE_NOT_FOUND");
      assert.equal(err.message, `cache store sqlite:${path} does not exist`);
      return true;
    });
    assert.equal(existsSync(path), false);
    await (await openStore(`sqlite:${path}`)).close();
    const reader = await openStore(`sqlite:${path}`, { mustExist: true });
    await reader.close();
  });

  it("an unreachable Redis is reported by its connection error, not ioredis's retry limit", async () => {
    const store = await openStore("redis://127.0.0.1:1?timeout=2s");
    try {
      for (const operation of [() => store.get("k"), () => store.ping()]) {
        await assert.rejects(operation(), (err: Error & { code?: string }) => {
          assert.equal(err.code, "STORE_UNAVAILABLE");
          assert.match(err.message, /unavailable: connect ECONNREFUSED 127\.0\.0\.1:1$/);
          assert.doesNotMatch(err.message, /max retries/i);
          return true;
        });
      }
    } finally {
      await store.close();
    }
  });
});
