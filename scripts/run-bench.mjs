#!/usr/bin/env node
// Runs every benchmark under bench/ (files named *.bench.ts), one after another, each in
// its own process so that one's memory does not weigh on the next. Numbers go to
// bench/results/*.json; each benchmark prints ratios against a baseline of the same run.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const only = process.argv.slice(2);
const files = readdirSync("bench")
  .filter((f) => f.endsWith(".bench.ts"))
  .sort()
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.log("run-bench: no benchmarks found under bench/");
  process.exit(0);
}
let failed = 0;
for (const file of files) {
  console.log(`\n== ${file}`);
  const r = spawnSync(process.execPath, ["--import", "tsx", "--expose-gc", `bench/${file}`], {
    stdio: "inherit",
  });
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
