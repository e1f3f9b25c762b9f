import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { MIN_EXPIRY_MS } from "../../../src/cache/stores/envelope.js";
import { SqliteStore, sqliteFailure } from "../../../src/cache/stores/sqlite.js";
import { makeTempDir } from "../../support/processes.js";
import { capturingLogger, storeContract } from "./store-contract.js";

const dir = makeTempDir("regscan-sqlite-");
const path = join(dir, "nested", "cache.db");
const { logger, lines } = capturingLogger();
// Two store instances on one file: two processes sharing the embedded cache.
const a = new SqliteStore(path, { logger });
const b = new SqliteStore(path);
after(async () => {
  await a.close();
  await b.close();
});

storeContract("sqlite", () => ({
  a,
  b,
  logs: lines,
  writeRaw: async (key, bytes) => {
    const db = new Database(path);
    db.prepare("INSERT OR REPLACE INTO entries (key, value, expires_at) VALUES (?, ?, ?)").run(
      key,
      bytes,
      Date.now() + 60_000,
    );
    db.close();
  },
  leaseTtlMs: 300,
}));

test("sqlite: the database is in WAL mode", () => {
  const db = new Database(path, { readonly: true });
  assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
  db.close();
});

test("sqlite: rows expire at twice the time to the deadline (at least an hour) and are pruned", async () => {
  let now = Date.now();
  const p = join(dir, "expiry.db");
  const s = new SqliteStore(p, { now: () => now });
  await s.set("short", new Date(now + 60_000), Buffer.from("a"));
  await s.set("long", new Date(now + 3 * MIN_EXPIRY_MS), Buffer.from("b"));
  const start = now;
  now = start + MIN_EXPIRY_MS - 1;
  assert.ok(await s.get("short"));
  now = start + MIN_EXPIRY_MS + 1;
  assert.equal(await s.get("short"), undefined);
  const [short, long] = await s.getMany(["short", "long"]);
  assert.equal(short, undefined, "getMany keeps the expiry of get");
  assert.equal(Buffer.from(long!.value).toString(), "b");
  now = start + 6 * MIN_EXPIRY_MS - 1;
  assert.ok(await s.get("long"));
  now = start + 6 * MIN_EXPIRY_MS + 1;
  assert.equal(await s.get("long"), undefined);
  await s.close();
  // Reopening prunes what expired (the clock of the reopened store is far ahead).
  const later = new SqliteStore(p, { now: () => start + 7 * MIN_EXPIRY_MS });
  await later.close();
  const db = new Database(p, { readonly: true });
  assert.equal(
    db.prepare("SELECT count(*) AS n FROM entries").get()?.valueOf() !== undefined,
    true,
  );
  const { n } = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM entries").get()!;
  db.close();
  assert.equal(n, 0);
});

test("sqlite: a closed store rejects with STORE_CLOSED", async () => {
  const s = new SqliteStore(join(dir, "closed.db"));
  await s.close();
  await assert.rejects(s.set("k", new Date(), Buffer.from("x")), { code: "STORE_CLOSED" });
  await assert.rejects(s.getMany(["k"]), { code: "STORE_CLOSED" });
});

test("sqlite: a database that cannot be opened is STORE_UNAVAILABLE naming the path", () => {
  const file = join(dir, "a-file");
  writeFileSync(file, "not a directory");
  assert.throws(() => new SqliteStore(join(file, "cache.db")), {
    code: "STORE_UNAVAILABLE",
    message: /a-file\/cache\.db/,
  });
});

test("sqlite: a file that is not a database is STORE_UNAVAILABLE and leaves no handle open", () => {
  const file = join(dir, "not-a-database.db");
  writeFileSync(file, Buffer.alloc(4096, "garbage "));
  assert.throws(() => new SqliteStore(file), {
    code: "STORE_UNAVAILABLE",
    message: /not-a-database\.db/,
  });
  const open = readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  });
  assert.deepEqual(open, [], "no file descriptor left on the file");
});

test("sqlite: the busy timeout is the one configured", async () => {
  const s = new SqliteStore(join(dir, "busy.db"), { busyTimeoutMs: 1234 });
  try {
    const db = new Database(join(dir, "busy.db"));
    // A second connection's write lock: the store waits about the timeout, then fails typed.
    db.exec("BEGIN IMMEDIATE");
    const started = Date.now();
    await assert.rejects(s.set("k", new Date(Date.now() + 1000), Buffer.from("x")), {
      code: "STORE_UNAVAILABLE",
    });
    const waited = Date.now() - started;
    assert.ok(waited >= 1000 && waited < 4000, `waited ${waited} ms`);
    db.exec("ROLLBACK");
    db.close();
  } finally {
    await s.close();
  }
});

test("sqlite: extended SQLite error codes of an outage are STORE_UNAVAILABLE", () => {
  for (const code of [
    "SQLITE_BUSY",
    "SQLITE_BUSY_SNAPSHOT",
    "SQLITE_IOERR_SHORT_READ",
    "SQLITE_FULL",
  ]) {
    const err = Object.assign(new Error("disk trouble"), { code });
    assert.equal(
      sqliteFailure({ store: "sqlite:x", operation: "set", err }).code,
      "STORE_UNAVAILABLE",
      code,
    );
  }
  const constraint = Object.assign(new Error("bad"), { code: "SQLITE_CONSTRAINT_NOTNULL" });
  assert.equal(
    sqliteFailure({ store: "sqlite:x", operation: "set", err: constraint }).code,
    "STORE_ERROR",
  );
  const uncoded = new Error("no code");
  assert.equal(
    sqliteFailure({ store: "sqlite:x", operation: "set", err: uncoded }).code,
    "STORE_ERROR",
  );
});

test("sqlite: SIGKILL mid-writes leaves a consistent database holding every committed write", async () => {
  const p = join(dir, "killed.db");
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(import.meta.dirname, "sqlite-writer.ts"), p],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const committed = new Map<string, string>();
  let buffered = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once("exit", (_code, signal) => resolve(signal)),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer made no progress: ${stderr}`)), 30_000);
    child.stdout.on("data", (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      for (const line of parts) {
        const [, key, sha] = line.split(" ");
        committed.set(key!, sha!);
      }
      // Kill well into the run, while it is writing as fast as it can.
      if (committed.size >= 400 && child.exitCode === null && !child.killed) {
        child.kill("SIGKILL");
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  assert.equal(await exited, "SIGKILL", `writer was killed (stderr: ${stderr})`);
  // Lines written before the kill but not yet read are still in the pipe.
  for (const line of buffered.split("\n").filter((l) => l.startsWith("committed "))) {
    const [, key, sha] = line.split(" ");
    if (sha?.length === 64) committed.set(key!, sha);
  }

  const db = new Database(p);
  assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
  db.close();
  const reopened = new SqliteStore(p);
  try {
    for (const [key, sha] of committed) {
      const got = await reopened.get(key);
      assert.ok(got, `${key} was reported committed and is present`);
      // Keys repeat every 500 writes, so the last report for a key is its last commit.
      assert.equal(createHash("sha256").update(got.value).digest("hex"), sha, key);
    }
  } finally {
    await reopened.close();
  }
});
