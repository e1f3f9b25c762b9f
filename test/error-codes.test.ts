/**
 * `REGSCAN_ERROR_CODES` (and so the `RegscanErrorCode` type that checks `switch`es on codes)
 * lists exactly the codes regscan's error classes declare: a new class with a code missing
 * from the list, or a listed code no class carries, fails here.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { knownErrorCode, REGSCAN_ERROR_CODES } from "../src/errors.js";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

test("the code list and the error classes' codes are the same set", () => {
  const declared = new Set<string>();
  for (const file of sources(SRC)) {
    for (const m of readFileSync(file, "utf8").matchAll(/readonly code = "([A-Z0-9_]+)"/g)) {
      if (m[1] !== undefined) declared.add(m[1]);
    }
  }
  assert.ok(declared.size > 40, `found ${declared.size} codes`);
  const listed = new Set<string>(REGSCAN_ERROR_CODES);
  assert.equal(listed.size, REGSCAN_ERROR_CODES.length, "no code is listed twice");
  assert.deepEqual(
    [...declared].filter((c) => !listed.has(c)),
    [],
    "declared by a class but missing from REGSCAN_ERROR_CODES",
  );
  assert.deepEqual(
    [...listed].filter((c) => !declared.has(c)),
    [],
    "listed but declared by no class",
  );
});

test("knownErrorCode: regscan's codes as they are, anything else undefined", () => {
  assert.equal(knownErrorCode("MANIFEST_UNKNOWN"), "MANIFEST_UNKNOWN");
  assert.equal(knownErrorCode("UNKNOWN"), undefined);
  assert.equal(knownErrorCode("manifest_unknown"), undefined);
});
