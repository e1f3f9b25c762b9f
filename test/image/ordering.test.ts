/**
 * Ordering helpers: newest first by creation time (missing last, ties by reference), and
 * by semantic version of the tag (lenient, non-versions last); both are total orders.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { ImageInfo } from "../../src/image/info.js";
import { OCI_CREATED_LABEL } from "../../src/image/label-timestamps.js";
import {
  compareNewestFirst,
  compareTagsBySemverDesc,
  sortBySemverDesc,
  sortNewestFirst,
  sortTagsBySemverDesc,
  tagVersion,
} from "../../src/image/ordering.js";
import { parseImageRef } from "../../src/image/ref.js";

function image(
  ref: string,
  opts: { createdAt?: string | undefined; labels?: Record<string, string> } = {},
): ImageInfo {
  const { createdAt, labels = {} } = opts;
  const out: ImageInfo = {
    ref: parseImageRef(ref),
    digest: `sha256:${"a".repeat(64)}`,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    labels,
    platforms: [],
  };
  if (createdAt !== undefined) out.createdAt = new Date(createdAt);
  return out;
}

const refsOf = (images: ImageInfo[]) => images.map((i) => i.ref.familiar());

describe("newest first", () => {
  it("sorts by creation time, missing times last, ties by reference", () => {
    const images = [
      image("a:none"),
      image("a:old", { createdAt: "2020-01-01T00:00:00Z" }),
      image("a:new-b", { createdAt: "2024-01-01T00:00:00Z" }),
      image("a:new-a", { createdAt: "2024-01-01T00:00:00Z" }),
      image("a:invalid", { createdAt: "not a date" }),
      image("a:mid", { createdAt: "2022-01-01T00:00:00Z" }),
    ];
    assert.deepEqual(refsOf(sortNewestFirst(images)), [
      "a:new-a",
      "a:new-b",
      "a:mid",
      "a:old",
      "a:invalid",
      "a:none",
    ]);
  });

  it("can order by the preferred label time", () => {
    const images = [
      image("a:x", {
        createdAt: "1970-01-01T00:00:00Z",
        labels: { [OCI_CREATED_LABEL]: "2024-01-01T00:00:00Z" },
      }),
      image("a:y", { createdAt: "2020-01-01T00:00:00Z" }),
    ];
    assert.deepEqual(refsOf(sortNewestFirst(images)), ["a:y", "a:x"]);
    assert.deepEqual(refsOf(sortNewestFirst(images, { preferLabels: true })), ["a:x", "a:y"]);
  });

  it("is a total order: any permutation sorts the same", () => {
    const arb = fc.array(
      fc.record({
        tag: fc.stringMatching(/^[a-z0-9]{1,6}$/),
        t: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
      }),
      { maxLength: 12 },
    );
    fc.assert(
      fc.property(arb, fc.infiniteStream(fc.nat()), (raw, noise) => {
        const images = raw.map((r) =>
          image(`a:${r.tag}`, {
            createdAt: r.t === undefined ? undefined : new Date(r.t * 1000).toISOString(),
          }),
        );
        const shuffled = images
          .map((i) => ({ i, k: noise.next().value }))
          .sort((x, y) => x.k - y.k)
          .map((x) => x.i);
        assert.deepEqual(refsOf(sortNewestFirst(images)), refsOf(sortNewestFirst(shuffled)));
        for (const x of images) assert.equal(compareNewestFirst(x, x), 0);
      }),
      { numRuns: 200 },
    );
  });
});

describe("by semantic version", () => {
  it("reads tags leniently", () => {
    assert.equal(tagVersion("v1.2")?.version, "1.2.0");
    assert.equal(tagVersion("1")?.version, "1.0.0");
    assert.equal(tagVersion("1.2.3-alpine")?.version, "1.2.3-alpine");
    assert.equal(tagVersion("V01.002.3")?.version, "1.2.3");
    assert.equal(tagVersion("1.2.3+build.5")?.build.join("."), "build.5");
    assert.equal(tagVersion("latest"), undefined);
    assert.equal(tagVersion("1.2.3.4"), undefined);
    assert.equal(tagVersion("v"), undefined);
    assert.equal(tagVersion("99999999999999999999"), undefined);
  });

  it("sorts highest first, pre-releases below releases, non-versions last", () => {
    assert.deepEqual(
      sortTagsBySemverDesc([
        "latest",
        "1.2.3-alpine",
        "v1.2",
        "1.10",
        "1.10.0",
        "1.9.9",
        "main",
        "1.2.3",
        "2",
        "1.2.3-alpha",
      ]),
      [
        "2",
        "1.10.0",
        "1.10",
        "1.9.9",
        "1.2.3",
        "1.2.3-alpine",
        "1.2.3-alpha",
        "v1.2",
        "latest",
        "main",
      ],
    );
  });

  it("sorts images by tag version, untagged last", () => {
    const d = `sha256:${"b".repeat(64)}`;
    const images = [image(`a@${d}`), image("a:1.0"), image("a:x"), image("a:2.0")];
    assert.deepEqual(refsOf(sortBySemverDesc(images)), ["a:2.0", "a:1.0", "a:x", `a@${d}`]);
  });

  it("is a total order on tags", () => {
    const tag = fc.oneof(
      fc.stringMatching(/^v?\d{1,2}(\.\d{1,2}){0,2}(-[a-z0-9]{1,4})?$/),
      fc.stringMatching(/^[a-z]{1,4}$/),
    );
    fc.assert(
      fc.property(tag, tag, tag, (a, b, c) => {
        const ab = Math.sign(compareTagsBySemverDesc(a, b));
        assert.equal(ab + Math.sign(compareTagsBySemverDesc(b, a)), 0, "antisymmetric");
        assert.equal(compareTagsBySemverDesc(a, b) === 0, a === b);
        if (compareTagsBySemverDesc(a, b) < 0 && compareTagsBySemverDesc(b, c) < 0) {
          assert.ok(compareTagsBySemverDesc(a, c) < 0);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
