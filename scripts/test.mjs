#!/usr/bin/env node
// `npm test` after its lint: builds dist/ (scripts/build-dist.mjs, every time: the tests that
// start the CLI as a process run bin/regscan.mjs on it, and the package test packs it) and
// runs every test (scripts/run-tests.mjs, this script's arguments passed on), while the
// type-check (`npm run typecheck`, tsc --noEmit over src/, test/, bench/ and scripts/) runs
// beside both at a lower priority: the tests leave part of the two cores idle as they wait on
// servers, and the type-check fills it instead of adding its 10-25 s of wall before them. Its
// output is held until the tests end and printed after theirs; a type error fails the run as
// a failed test does. The type-check is incremental (TypeScript's own: .tmp/typecheck.tsbuildinfo
// keeps each file's content hash and its diagnostics, and a file is checked again when it or
// what it depends on changed): 12-13 s of CPU from nothing, as in a fresh clone, 4-5 s when
// nothing changed (every file is still read and parsed); `npm run typecheck` checks everything.
import { spawn } from "node:child_process";
import { setPriority } from "node:os";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const TSC = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
/** The type-check's record of what it checked (.tmp/ is ignored by git). */
const TYPECHECK_INFO = ".tmp/typecheck.tsbuildinfo";
/** The type-check's niceness: the tests' timings come first. */
const TYPECHECK_NICE = 10;

function exited(child) {
  return new Promise((resolve) => {
    child.once("error", (err) => resolve({ code: 1, error: err }));
    child.once("exit", (code, signal) => resolve({ code: code ?? 1, signal }));
  });
}

/** The processes this script started: a SIGTERM is passed on to them. */
const children = [];

function start(args, stdio) {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio });
  children.push(child);
  return child;
}

const started = performance.now();
const typecheck = start(
  [TSC, "-p", "tsconfig.json", "--noEmit", "--incremental", "--tsBuildInfoFile", TYPECHECK_INFO],
  ["ignore", "pipe", "pipe"],
);
let typecheckOutput = "";
typecheck.stdout.setEncoding("utf8").on("data", (d) => {
  typecheckOutput += d;
});
typecheck.stderr.setEncoding("utf8").on("data", (d) => {
  typecheckOutput += d;
});
const typechecked = exited(typecheck).then((r) => ({
  ...r,
  seconds: (performance.now() - started) / 1000,
}));
try {
  setPriority(typecheck.pid, TYPECHECK_NICE);
} catch {
  // Not fatal: it runs at the tests' priority.
}
// Ctrl-C reaches the whole process group; a SIGTERM to this script alone is passed on. Either
// way the script waits for the build and the tests' runner to end, then exits as the signal says.
let interrupted;
for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
]) {
  process.once(signal, () => {
    interrupted = code;
    for (const child of children) {
      if (child === typecheck || signal === "SIGTERM") child.kill("SIGTERM");
    }
  });
}

// The tests start once the build holds its lock, not once it has ended: the first test that
// uses dist/ waits there for the build (build-dist --if-stale, test/support/built-dist.ts),
// and the rest, most of the suite, runs meanwhile.
const builder = start(["scripts/build-dist.mjs"], ["inherit", "inherit", "inherit", "ipc"]);
const built = exited(builder);
await Promise.race([new Promise((resolve) => builder.once("message", resolve)), built]);
const tests = await exited(start(["scripts/run-tests.mjs", ...process.argv.slice(2)], "inherit"));
const build = await built;
const types = await typechecked;
if (interrupted !== undefined) process.exit(interrupted);
const took = `${types.seconds.toFixed(1)} s`;
if (types.code === 0) {
  console.log(`# typecheck (tsc --noEmit): no errors (${took}, beside the tests)`);
} else {
  process.stdout.write(typecheckOutput);
  console.log(`# typecheck (tsc --noEmit): FAILED (exit ${types.code}, ${took})`);
}
if (build.code !== 0) console.log("# dist/ did not build (scripts/build-dist.mjs)");
process.exit(tests.code !== 0 || types.code !== 0 ? 1 : 0);
