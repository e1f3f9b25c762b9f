/**
 * importOptional turns "this optional package is not installed" into a MissingDependencyError
 * naming it, and lets every other failure through (a broken installed package stays visible).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { importOptional, MissingDependencyError } from "../../src/optional-dependency.js";

describe("importOptional", () => {
  test("a package that is not installed: MISSING_DEPENDENCY naming it and the feature", async () => {
    const err = await importOptional({
      packageName: "regscan-not-installed",
      feature: "the test feature",
      load: () => import("regscan-not-installed" as string),
    }).then(
      () => assert.fail("resolved"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof MissingDependencyError);
    assert.equal(err.code, "MISSING_DEPENDENCY");
    assert.equal(err.packageName, "regscan-not-installed");
    assert.equal(
      err.message,
      "the test feature needs the optional package regscan-not-installed, which is not installed (npm install regscan-not-installed)",
    );
    assert.equal((err.cause as NodeJS.ErrnoException).code, "ERR_MODULE_NOT_FOUND");
  });

  test("another package missing (a broken install of this one) and other errors pass through", async () => {
    const other = await importOptional({
      packageName: "regscan-wanted",
      feature: "feature",
      load: () => import("regscan-something-else" as string),
    }).then(
      () => assert.fail("resolved"),
      (e: unknown) => e,
    );
    assert.ok(!(other instanceof MissingDependencyError));
    assert.equal((other as NodeJS.ErrnoException).code, "ERR_MODULE_NOT_FOUND");
    const boom = new Error("boom");
    await assert.rejects(
      importOptional({ packageName: "x", feature: "feature", load: () => Promise.reject(boom) }),
      (e) => e === boom,
    );
  });

  test("an installed package loads", async () => {
    const mod = await importOptional({
      packageName: "semver",
      feature: "feature",
      load: () => import("semver"),
    });
    assert.equal(typeof mod.default.parse, "function");
  });
});
