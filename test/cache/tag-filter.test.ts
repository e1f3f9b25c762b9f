/**
 * Tag filters: globs and `/regular expressions/` for include and exclude, maxTags by semver
 * or listing order, listing order kept, and InvalidTagFilterError naming the bad pattern.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  compileTagFilter,
  filterTags,
  InvalidTagFilterError,
  type TagFilterOptions,
} from "../../src/cache/tag-filter.js";

const TAGS = [
  "latest",
  "1.0.0",
  "1.2.0-alpine",
  "v1.10",
  "1.9.0",
  "2.0.0-rc.1",
  "main",
  "1.2.0",
  "sha-abc123",
  "2.0.0",
];

function assertInvalid(filter: TagFilterOptions, pattern: string, reason: RegExp): void {
  assert.throws(
    () => filterTags(TAGS, filter),
    (err: unknown) => {
      assert.ok(err instanceof InvalidTagFilterError, `threw ${String(err)}`);
      assert.equal(err.code, "INVALID_TAG_FILTER");
      assert.equal(err.pattern, pattern);
      assert.ok(err.message.includes(JSON.stringify(pattern)), err.message);
      assert.match(err.message, reason);
      return true;
    },
  );
}

describe("filterTags", () => {
  it("keeps every tag, in listing order, without a filter or with an empty one", () => {
    assert.deepEqual(filterTags(TAGS), TAGS);
    assert.deepEqual(filterTags(TAGS, {}), TAGS);
    assert.deepEqual(filterTags(TAGS, { include: [], exclude: [] }), TAGS);
    assert.notEqual(filterTags(TAGS), TAGS, "a copy, not the input");
  });

  it("includes by glob over the whole tag", () => {
    assert.deepEqual(filterTags(TAGS, { include: ["1.*"] }), [
      "1.0.0",
      "1.2.0-alpine",
      "1.9.0",
      "1.2.0",
    ]);
    assert.deepEqual(filterTags(TAGS, { include: ["*-alpine", "main"] }), ["1.2.0-alpine", "main"]);
    assert.deepEqual(filterTags(TAGS, { include: ["1.?.0"] }), ["1.0.0", "1.9.0", "1.2.0"]);
    assert.deepEqual(filterTags(TAGS, { include: ["{latest,main}"] }), ["latest", "main"]);
    assert.deepEqual(filterTags(TAGS, { include: ["sha"] }), [], "globs are not substrings");
  });

  it("includes by regular expression, searched anywhere unless anchored", () => {
    assert.deepEqual(filterTags(TAGS, { include: ["/^\\d+\\.\\d+\\.\\d+$/"] }), [
      "1.0.0",
      "1.9.0",
      "1.2.0",
      "2.0.0",
    ]);
    assert.deepEqual(filterTags(TAGS, { include: ["/alpine|rc/"] }), [
      "1.2.0-alpine",
      "2.0.0-rc.1",
    ]);
    assert.deepEqual(filterTags(["MAIN", "main"], { include: ["/^main$/i"] }), ["MAIN", "main"]);
  });

  it("excludes win over includes, by glob or regular expression", () => {
    assert.deepEqual(filterTags(TAGS, { include: ["*.*"], exclude: ["*-*", "/^v/"] }), [
      "1.0.0",
      "1.9.0",
      "1.2.0",
      "2.0.0",
    ]);
    assert.deepEqual(filterTags(TAGS, { exclude: ["latest", "main", "sha-*"] }).length, 7);
  });

  it("keeps the newest maxTags by semver, in listing order", () => {
    assert.deepEqual(filterTags(TAGS, { maxTags: 3 }), ["v1.10", "2.0.0-rc.1", "2.0.0"]);
    assert.deepEqual(filterTags(TAGS, { maxTags: 3, order: "semver" }), [
      "v1.10",
      "2.0.0-rc.1",
      "2.0.0",
    ]);
    assert.deepEqual(
      filterTags(TAGS, { include: ["/^\\d+\\.\\d+\\.\\d+$/"], maxTags: 2 }),
      ["1.9.0", "2.0.0"],
      "filters first, then counts",
    );
    // Non-versions are oldest: they are only kept when fewer versions than maxTags remain,
    // and then in string order.
    assert.deepEqual(filterTags(["main", "1.0", "latest"], { maxTags: 2 }), ["1.0", "latest"]);
    assert.deepEqual(filterTags(TAGS, { maxTags: 0 }), []);
    assert.deepEqual(filterTags(TAGS, { maxTags: 100 }), TAGS);
  });

  it("keeps the last maxTags of the listing with order listing", () => {
    assert.deepEqual(filterTags(TAGS, { maxTags: 2, order: "listing" }), ["sha-abc123", "2.0.0"]);
    assert.deepEqual(filterTags(TAGS, { maxTags: 0, order: "listing" }), []);
    assert.deepEqual(filterTags(TAGS, { exclude: ["2.*"], maxTags: 2, order: "listing" }), [
      "1.2.0",
      "sha-abc123",
    ]);
  });

  it("rejects bad patterns and settings, naming them", () => {
    assertInvalid({ include: ["/(unclosed/"] }, "/(unclosed/", /not a valid regular expression/);
    assertInvalid({ exclude: ["ok", "[abc"] }, "[abc", /not a valid glob/);
    assertInvalid({ include: ["/x/g"] }, "/x/g", /flags/);
    assertInvalid({ include: ["//"] }, "//", /empty/);
    assertInvalid({ include: [""] }, "", /non-empty/);
    assertInvalid({ maxTags: -1 }, "maxTags: -1", /non-negative integer/);
    assertInvalid({ maxTags: 1.5 }, "maxTags: 1.5", /non-negative integer/);
    assertInvalid(
      { order: "alphabetical" as unknown as "semver" },
      "order: alphabetical",
      /"semver" or "listing"/,
    );
  });

  it("compiles once and checks the filter before any listing", () => {
    assert.throws(() => compileTagFilter({ include: ["/(/"] }), InvalidTagFilterError);
    const keep = compileTagFilter({ include: ["v*"], maxTags: 1 });
    assert.deepEqual(keep(["v1", "v2", "x"]), ["v2"]);
    assert.deepEqual(keep(["v3", "v1"]), ["v3"]);
  });

  it("always returns a subsequence of the listing, never longer than maxTags", () => {
    const tag = fc.stringMatching(/^[\w][\w.-]{0,8}$/);
    fc.assert(
      fc.property(
        fc.uniqueArray(tag, { maxLength: 30 }),
        fc.option(fc.nat(10), { nil: undefined }),
        fc.constantFrom<"semver" | "listing">("semver", "listing"),
        fc.array(fc.constantFrom("*", "v*", "*.*", "/\\d/", "/^[a-z]+$/"), { maxLength: 2 }),
        (tags, maxTags, order, include) => {
          const kept = filterTags(tags, { include, maxTags, order });
          if (maxTags !== undefined) assert.ok(kept.length <= maxTags);
          let at = 0;
          for (const t of kept) {
            at = tags.indexOf(t, at);
            assert.ok(at >= 0, "in listing order");
            at++;
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
