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
