import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compileTagFilter } from "../../src/cache/tag-filter.js";
import { toTagFilterOptions } from "../../src/config/tag-filter-options.js";

describe("toTagFilterOptions", () => {
  test("max becomes maxTags; the other fields keep their names", () => {
    assert.deepEqual(
      toTagFilterOptions({ include: ["v*"], exclude: ["*-rc"], max: 2, order: "listing" }),
      { include: ["v*"], exclude: ["*-rc"], maxTags: 2, order: "listing" },
    );
    assert.deepEqual(toTagFilterOptions({}), {});
  });

  test("the mapped limit is the one the compiled filter applies", () => {
    const keep = compileTagFilter(toTagFilterOptions({ include: ["v*"], max: 2 }));
    assert.deepEqual(keep(["v1.0.0", "latest", "v3.0.0", "v2.0.0"]), ["v3.0.0", "v2.0.0"]);
  });
});
