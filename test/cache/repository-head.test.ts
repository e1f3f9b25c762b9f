/**
 * The repository record's head (src/cache/index-records.ts, `decodeRepositoryIndexHead`):
 * the fields and the tag count the status list and a skipped scan read, counted without
 * decoding the tag list. It must answer exactly as the whole decode does for every input:
 * records as written, records with tags the fast path does not take, and any bytes at all.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decodeRepositoryIndexHead,
  decodeRepositoryIndexRecord,
  encodeRepositoryIndexRecord,
} from "../../src/cache/index-records.js";
import type { RepositoryRecord } from "../../src/cache/records.js";

const encoder = new TextEncoder();

/** Tags of the grammar (`[\w][\w.-]{0,127}`, short here) and, now and then, strings that are not. */
const tag = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[\w][\w.-]{0,12}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);
const ms = fc.integer({ min: 0, max: 4_102_444_800_000 });
const record: fc.Arbitrary<RepositoryRecord> = fc.record(
  {
    tags: fc.array(tag, { maxLength: 20 }),
    filteredOut: fc.nat(),
    artifactTags: fc.integer({ min: 1, max: 50 }),
    lastUpdate: ms.map((t) => new Date(t)),
    lastError: fc.record({
      code: fc.string({ minLength: 1, maxLength: 8 }),
      message: fc.string({ maxLength: 20 }),
      at: ms.map((t) => new Date(t)),
    }),
    lastScanned: ms.map((t) => new Date(t)),
    scannedBy: fc.string({ maxLength: 10 }),
    imagesKeptAt: ms.map((t) => new Date(t)),
    writtenAt: ms.map((t) => new Date(t)),
  },
  { requiredKeys: [] },
);

/** What the head must say: the whole decode without its tags, and their count. */
function expected(bytes: Uint8Array) {
  const whole = decodeRepositoryIndexRecord(bytes);
  if (whole === undefined) return undefined;
  const { tags, ...rest } = whole;
  return { record: { ...rest, tags: undefined }, tagCount: tags?.length };
}

describe("decodeRepositoryIndexHead", () => {
  it("answers as the whole decode for every record as written", () => {
    fc.assert(
      fc.property(record, (r) => {
        const bytes = encodeRepositoryIndexRecord(r);
        assert.deepEqual(decodeRepositoryIndexHead(bytes), expected(bytes));
        assert.equal(decodeRepositoryIndexHead(bytes)?.tagCount, r.tags?.length);
      }),
      { numRuns: 500 },
    );
  });

  it("answers as the whole decode for records cut, spliced or changed anywhere", () => {
    const mangled = fc
      .tuple(record, fc.nat(), fc.nat(), fc.string({ maxLength: 4 }))
      .map(([r, at, cut, insert]) => {
        const text = new TextDecoder().decode(encodeRepositoryIndexRecord(r));
        const i = at % (text.length + 1);
        return encoder.encode(text.slice(0, i) + insert + text.slice(i + (cut % 4)));
      });
    fc.assert(
      fc.property(mangled, (bytes) => {
        assert.deepEqual(decodeRepositoryIndexHead(bytes), expected(bytes));
      }),
      { numRuns: 2_000 },
    );
  });

  it("reads a record with a time past the Date range as a miss, as the whole decode does", () => {
    const at = (t: string) =>
      encoder.encode(
        `{"v":2,"tags":["a.aa","a."],"lastError":{"code":" ","message":"m","at":${t}}}`,
      );
    // The largest time a Date holds, then one past it (fast-check's find, before the check).
    assert.equal(decodeRepositoryIndexHead(at("8640000000000000"))?.tagCount, 2);
    assert.equal(decodeRepositoryIndexRecord(at("100337448E08")), undefined);
    assert.equal(decodeRepositoryIndexHead(at("100337448E08")), undefined);
    assert.equal(decodeRepositoryIndexHead(at("8640000000000001")), undefined);
  });

  it("answers as the whole decode for arbitrary bytes, invalid UTF-8 included", () => {
    const prefixed = fc
      .uint8Array({ maxLength: 40 })
      .map((tail) => new Uint8Array([...encoder.encode('{"v":2,"tags":["a"'), ...tail]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 40 }), prefixed), (bytes) => {
        assert.deepEqual(decodeRepositoryIndexHead(bytes), expected(bytes));
      }),
      { numRuns: 1_000 },
    );
  });

  it("counts a 40,000-tag list and keeps every other field", () => {
    const tags = Array.from({ length: 40_000 }, (_, i) => `v1.${i}-alpine`);
    const lastUpdate = new Date(1_800_000_000_000);
    const bytes = encodeRepositoryIndexRecord({ tags, lastUpdate, artifactTags: 3 });
    const head = decodeRepositoryIndexHead(bytes);
    assert.equal(head?.tagCount, 40_000);
    assert.equal(head?.record.tags, undefined);
    assert.deepEqual(head?.record.lastUpdate, lastUpdate);
    assert.equal(head?.record.artifactTags, 3);
  });
});
