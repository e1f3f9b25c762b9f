/**
 * The API's table of stored repository states: shared by readers for a second, read again
 * after it or after a tag event, and holding only the states still within their second.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RepositoryJsonCache } from "../../src/server/repository-json-cache.js";

describe("RepositoryJsonCache stored states", () => {
  it("shares a state within its second, reads it again after, and after forgetVersion", async () => {
    let now = 0;
    const cache = new RepositoryJsonCache({ now: () => now });
    let reads = 0;
    const read = async () => ({ version: `v${++reads}` });
    assert.equal((await cache.version("a", read))?.version, "v1");
    now = 999;
    assert.equal((await cache.version("a", read))?.version, "v1");
    now = 1_000;
    assert.equal((await cache.version("a", read))?.version, "v2");
    cache.forgetVersion("a");
    assert.equal((await cache.version("a", read))?.version, "v3");
  });

  it("keeps no state past its second, however many repositories are read", async () => {
    let now = 0;
    const cache = new RepositoryJsonCache({ now: () => now });
    const read = async () => ({ version: "v" });
    for (let i = 0; i < 20_000; i++) {
      // 100 repositories every 10 ms, over 2 s.
      now = Math.floor(i / 100) * 10;
      await cache.version(`repo-${i}`, read);
    }
    // The last second holds at most 10,000 states; the old table kept up to 16,384.
    const { states } = cache.stats();
    assert.ok(states <= 100 * 100, `states kept: ${states}`);
    now += 1_000;
    await cache.version("last", read);
    assert.equal(cache.stats().states, 1);
  });

  it("drops a failed read so that the next reader tries again", async () => {
    const cache = new RepositoryJsonCache({ now: () => 0 });
    await assert.rejects(
      cache.version("a", async () => {
        throw new Error("store down");
      }),
    );
    assert.equal((await cache.version("a", async () => ({ version: "ok" })))?.version, "ok");
  });
});

describe("RepositoryJsonCache admission of answers it can get again", () => {
  const body = (bytes: number) => [Buffer.alloc(bytes, 0x20)];
  const keep = (cache: RepositoryJsonCache, name: string, bytes = 100) =>
    cache.get(name, "v", async () => body(bytes));

  it("admits while it has room, then only what was asked again before its oldest answer's use", async () => {
    let now = 0;
    const cache = new RepositoryJsonCache({ now: () => now, maxBytes: 1_000 });
    assert.equal(cache.admits("roomy"), true, "under half full");
    for (const name of ["a", "b", "c", "d", "e", "f"]) await keep(cache, name);
    now = 200;
    assert.equal(cache.admits("x"), false, "never asked before");
    now = 250;
    for (const name of ["a", "b", "c", "d", "e", "f"]) cache.peek(name, "v");
    now = 260;
    // Every answer kept was used since x was asked (at 200): kept then, x would be the oldest.
    assert.equal(cache.admits("x"), false, "asked last before the oldest answer's last use");
    now = 270;
    assert.equal(cache.admits("x"), true, "asked again since the oldest answer's last use");
    now = 5_000;
    assert.equal(cache.admits("x"), true, "nothing kept was used since x was asked");
  });

  it("does not keep a body whose build says not to, and dates one made earlier", async () => {
    let now = 50_000;
    const cache = new RepositoryJsonCache({ now: () => now });
    await cache.get("skip", "v", async (made) => {
      made.keep = false;
      return body(10);
    });
    assert.equal(cache.peek("skip", "v"), undefined);
    await cache.get("old", "v", async (made) => {
      made.builtAt = 0;
      return body(10);
    });
    now = 59_999;
    assert.ok(cache.peek("old", "v"), "within 60 s of when it was made");
    now = 60_000;
    assert.equal(cache.peek("old", "v"), undefined, "past 60 s of when it was made");
  });
});

describe("RepositoryJsonCache answers", () => {
  it("holds an answer's gzip in place of its text, for the version it was built from only", async () => {
    const cache = new RepositoryJsonCache({ maxBytes: 1_000 });
    const text = [Buffer.alloc(600, "a")];
    await cache.get("a", "v1", async () => text);
    assert.equal(cache.stats().bytes, 600);
    const gzip = { gzip: Buffer.alloc(60), bytes: 600 };
    cache.replace("a", "v2", gzip);
    assert.equal(cache.peek("a", "v1"), text, "another version's gzip is not this answer");
    cache.replace("a", "v1", gzip);
    assert.equal(cache.peek("a", "v1"), gzip);
    assert.equal(cache.stats().bytes, 60, "counted by the bytes it holds now");
    // Room for what the text took: 900 more bytes fit beside it.
    await cache.get("b", "v1", async () => [Buffer.alloc(900, "b")]);
    assert.equal(cache.peek("a", "v1"), gzip);
    assert.equal(cache.stats().bytes, 960);
    cache.replace("c", "v1", gzip);
    assert.equal(cache.stats().entries, 2, "nothing held for a repository not kept");
  });
});
