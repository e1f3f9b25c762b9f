#!/usr/bin/env node
// Runs every test file under test/ with Node's own runner through tsx. The files are
// listed explicitly on the command line: on Node 20, `--test test/` finds no .ts files
// and exits 0 having run nothing. Pass file paths to run only those.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith(".test.ts")) out.push(relative(process.cwd(), path));
  }
  return out;
}

const given = process.argv.slice(2);
const files = given.length > 0 ? given : findTests("test");
if (files.length === 0) {
  console.error("run-tests: no test files found under test/");
  process.exit(1);
}
const concurrency = process.env.REGSCAN_TEST_CONCURRENCY ?? "3";
const result = spawnSync(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    `--test-concurrency=${concurrency}`,
    "--test-timeout=300000",
    ...files,
  ],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
