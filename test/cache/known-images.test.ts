/**
 * KnownImages: the index's images by digest are built only when a scan first asks, once,
 * and images gone from the store are never offered, whether dropped before or after that.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KnownImages } from "../../src/cache/known-images.js";

const entries = (): Map<string, string> =>
  new Map([
    ["sha256:a", "img-a"],
    ["sha256:b", "img-b"],
    ["sha256:c", "img-c"],
  ]);

describe("KnownImages", () => {
  it("is not built while nobody asks, and built once", () => {
    let builds = 0;
    const known = new KnownImages(() => {
      builds++;
      return entries();
    });
    known.drop(new Set(["img-b"]));
    assert.equal(builds, 0, "a rescan that fetches nothing never builds it");
    assert.equal(known.get("sha256:a"), "img-a");
    assert.equal(known.has("sha256:b"), false, "dropped before it was built");
    assert.equal(known.has("sha256:x"), false);
    known.drop(new Set(["img-c"]));
    assert.equal(known.get("sha256:c"), undefined, "dropped after it was built");
    assert.equal(builds, 1);
  });
});
