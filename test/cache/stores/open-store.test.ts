import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { defaultStoreUrl, openStore, redact } from "../../../src/cache/open-store.js";
import { MemcachedStore } from "../../../src/cache/stores/memcached.js";
import { MemoryStore } from "../../../src/cache/stores/memory.js";
import { RedisStore } from "../../../src/cache/stores/redis.js";
import { SqliteStore } from "../../../src/cache/stores/sqlite.js";
import { makeTempDir } from "../../support/processes.js";

test("openStore: memory: and sqlite:PATH pick their stores", async () => {
  const dir = makeTempDir("regscan-open-");
  const mem = await openStore("memory:");
  assert.ok(mem instanceof MemoryStore);
  await mem.close();
  for (const url of [`sqlite:${join(dir, "a.db")}`, `sqlite://${join(dir, "b.db")}`]) {
    const s = await openStore(url);
    assert.ok(s instanceof SqliteStore);
    assert.ok(s.path.startsWith(dir));
    await s.close();
  }
});

test("openStore: the default is SQLite in the user's cache directory", () => {
  assert.match(defaultStoreUrl(), /^sqlite:\/.*regscan\/cache\.db$/);
});

test("openStore: network URLs pick their stores without connecting", async () => {
  const cases: Array<[string, new (...args: never[]) => unknown]> = [
    ["memcached://127.0.0.1:1", MemcachedStore],
    ["memcached://127.0.0.1:1,127.0.0.1:2?itemSize=2m&maxValueSize=32m&timeout=2s", MemcachedStore],
    ["redis://127.0.0.1:1", RedisStore],
    ["redis://user:secret@127.0.0.1:1/2?timeout=500ms", RedisStore],
    ["redis+cluster://127.0.0.1:1,127.0.0.1:2", RedisStore],
  ];
  for (const [url, kind] of cases) {
    const s = await openStore(url);
    assert.ok(s instanceof kind, url);
    await s.close();
  }
});

test("openStore: bad URLs are INVALID_STORE_URL naming the URL, never the password", async () => {
  const bad = [
    ["ftp://x", /unknown scheme/],
    ["nonsense", /SCHEME/],
    ["memory:extra", /memory:/],
    ["memcached://", /no host/],
    ["memcached://host:99999", /out of range/],
    ["memcached://a b", /HOST\[:PORT\]/],
    ["memcached://h:1?itemSize=lots", /itemSize=lots/],
    ["memcached://h:1?dns=127.0.0.1", /memcached\+srv/],
    ["memcached://h:1?colour=red", /"colour"/],
    ["memcached+srv://a,b", /one DNS name/],
    ["redis://h:1,h:2", /redis\+cluster/],
    ["redis://h:1/db", /database number/],
    ["redis+cluster://h:1/3", /no database number/],
    ["redis://user:hunter2@h:1?timeout=soon", /timeout=soon/],
  ] as const;
  for (const [url, reason] of bad) {
    await assert.rejects(openStore(url), (err: Error & { code?: string }) => {
      assert.equal(err.code, "INVALID_STORE_URL", url);
      assert.match(err.message, reason, url);
      assert.doesNotMatch(err.message, /hunter2/);
      return true;
    });
  }
});

test("openStore: a password with a raw @, / or ? is never echoed, whole or in part", async () => {
  for (const url of [
    "redis://:hunter2@x@h:1?timeout=soon",
    "redis://:hun/ter2@h:1",
    "redis://:hun?ter2@h:1",
    "rediss://user:hu?n/t@er2@h:1/0?colour=red",
  ]) {
    await assert.rejects(openStore(url), (err: Error & { code?: string }) => {
      assert.equal(err.code, "INVALID_STORE_URL", url);
      for (const piece of ["hun", "ter2", "er2", "@x"]) {
        assert.ok(!err.message.includes(piece), `${url}: "${piece}" in ${err.message}`);
      }
      return true;
    });
  }
});

test("redact hides the password of a URL", () => {
  assert.equal(redact("redis://u:p@ss@h:1/0"), "redis://u:***@h:1/0");
  assert.equal(redact("redis://:p/a?ss@h:1"), "redis://:***@h:1");
  assert.equal(redact("redis://u:p%40ss@h:1/0"), "redis://u:***@h:1/0");
  assert.equal(redact("rediss://:tok@h"), "rediss://:***@h");
  assert.equal(redact("redis://h:1"), "redis://h:1");
});
