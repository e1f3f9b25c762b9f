/**
 * `CliError` is a `RegscanError` (code `CLI_ERROR`) like every other error, and turning
 * errors into CLI errors keeps one that already is (Ctrl-C's keeps its exit status 130).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { asCliError } from "../../src/cli/commands/tags.js";
import { CliError } from "../../src/cli/context.js";
import { RegscanError } from "../../src/errors.js";
import { ManifestUnknownError } from "../../src/registry/errors.js";

test("CliError extends RegscanError, with its code, name and exit status", () => {
  const err = new CliError("interrupted", 130);
  assert.ok(err instanceof RegscanError);
  assert.equal(err.code, "CLI_ERROR");
  assert.equal(err.name, "CliError");
  assert.equal(err.exitCode, 130);
});

test("asCliError: a CliError stays itself; another RegscanError becomes one line, exit 1", () => {
  const interrupted = new CliError("interrupted", 130);
  assert.equal(asCliError(interrupted), interrupted);
  const converted = asCliError(new ManifestUnknownError({ host: "r", reference: "v1" }));
  assert.ok(converted instanceof CliError);
  assert.equal(converted.exitCode, 1);
  assert.match(converted.message, /manifest unknown: r/);
  const bug = new TypeError("x");
  assert.equal(asCliError(bug), bug);
});
