/**
 * The API's table of stored repository states: shared by readers for a second, answered
 * for one more while read again behind, read again after a tag event, and holding only the
 * states still within their two seconds.
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
    assert.equal(reads, 1);
    now = 1_000;
    // Answered with what it has while read again (see the next test), then the new state.
    assert.equal((await cache.version("a", read))?.version, "v1");
    assert.equal(reads, 2);
    assert.equal((await cache.version("a", read))?.version, "v2");
    cache.forgetVersion("a");
    assert.equal((await cache.version("a", read))?.version, "v3");
  });

  it("within the next second, answers the state it has at once and reads it again behind", async () => {
    let now = 0;
    const cache = new RepositoryJsonCache({ now: () => now });
    let reads = 0;
    let release = () => {};
    const read = () => {
      const version = `v${++reads}`;
      return new Promise<{ version: string }>((resolve) => {
        release = () => resolve({ version });
      });
    };
    const first = cache.version("a", read);
    release();
    assert.equal((await first)?.version, "v1");
    now = 1_500;
    // Answered before the second read says anything (it is held back here).
    assert.equal((await cache.version("a", read))?.version, "v1");
    assert.equal(reads, 2, "read again behind the answer");
    assert.equal((await cache.version("a", read))?.version, "v1");
    assert.equal(reads, 2, "once");
    release();
    await new Promise((r) => setImmediate(r));
    assert.equal((await cache.version("a", read))?.version, "v2");
    // Past the grace, a caller waits for its own read.
    now = 1_500 + 2_000;
    const late = cache.version("a", read);
    let settled = false;
    void late.then(() => {
      settled = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, "waits for the read");
    release();
    assert.equal((await late)?.version, "v3");
    // A tag event (forgetVersion) ends the grace: the next caller waits for the read.
    now += 1_200;
    cache.forgetVersion("a");
    const after = cache.version("a", read);
    release();
    assert.equal((await after)?.version, "v4");
  });

  it("gives no grace to a repository without a record (not cached yet)", async () => {
    let now = 0;
    const cache = new RepositoryJsonCache({ now: () => now });
    let reads = 0;
    const read = async () => (++reads === 1 ? undefined : { version: "v" });
    assert.equal(await cache.version("a", read), undefined);
    now = 1_200;
    assert.equal((await cache.version("a", read))?.version, "v");
  });

  it("keeps no state past its two seconds, however many repositories are read", async () => {
    let now = 0;
    const cache = new RepositoryJsonCache({ now: () => now });
    const read = async () => ({ version: "v" });
    for (let i = 0; i < 20_000; i++) {
      // 100 repositories every 10 ms, over 2 s.
      now = Math.floor(i / 100) * 10;
      await cache.version(`repo-${i}`, read);
    }
    // The last two seconds hold at most 20,000 states, then none is older.
    now += 1_000;
    await cache.version("mid", read);
    const { states } = cache.stats();
    assert.ok(states <= 100 * 100 + 1, `states kept: ${states}`);
    now += 2_000;
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
