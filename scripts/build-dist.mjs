#!/usr/bin/env node
// Builds dist/ for the tests, which run the CLI as users do (bin/regscan.mjs on dist/), and for
// the package test, which packs it. `tsc --noCheck`: the emit only; `npm test` type-checks in a
// step of its own (tsc --noEmit over src/ and test/), and what tsc emits does not depend on the
// check (compared: the same files, one union's members in another order). It is a third of a
// checked build's time. `npm run build` stays the checked build that `prepare` runs.
//
// tsc writes into a staging directory next to dist/, and each file that differs is then renamed
// into dist/ (atomic: a test process of another run loading dist/ meanwhile reads the old file
// or the new one, never half of one) and each file of dist/ that the build no longer emits
// (a module since removed) is deleted, so that dist/ is exactly what this source compiles to.
//
// `--if-stale` builds only when a source input is newer than the last build of this script
// (src/'s files and directories, a directory's time changing when a file in it is added,
// removed or renamed; the tsconfigs; package.json; the installed packages' lock file), or when
// dist/cli/main.js is missing: for a test file run alone, whose run has no build step before it
// (`npm test` builds every time). Runs are serialised by a lock directory, so test processes
// that start together build once, and a test that checks while a build runs waits for it.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DIST = join(ROOT, "dist");
const WORK = join(ROOT, ".tmp/build-dist");
const STAMP = join(WORK, "built");
const LOCK = join(WORK, "lock");
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
/** What tsc's output depends on besides src/. */
const INPUT_FILES = [
  "tsconfig.json",
  "tsconfig.build.json",
  "package.json",
  "node_modules/.package-lock.json",
  "node_modules/typescript/package.json",
];

function newestMtime(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function isStale() {
  if (!existsSync(join(DIST, "cli/main.js")) || !existsSync(STAMP)) return true;
  let newest = newestMtime(join(ROOT, "src"));
  for (const f of INPUT_FILES) {
    const path = join(ROOT, f);
    if (existsSync(path)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  // Equal times count as newer: an edit in the build's first millisecond is not missed.
  return newest >= statSync(STAMP).mtimeMs;
}

function files(dir, base = dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files(path, base, out);
    else out.push(relative(base, path));
  }
  return out;
}

/** Removes the directories under `dir` that the deletions left empty. */
function removeEmptyDirs(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeEmptyDirs(join(dir, entry.name));
  }
  if (dir !== DIST && readdirSync(dir).length === 0) rmdirSync(dir);
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

/** Takes the lock; one left by a process that has ended is taken over. */
function lock() {
  mkdirSync(WORK, { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, "pid"), String(process.pid));
      return;
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
    }
    let pid = 0;
    try {
      pid = Number(readFileSync(join(LOCK, "pid"), "utf8"));
    } catch {
      // Taken a moment ago, its pid not written yet.
    }
    if (pid > 0 && !alive(pid)) rmSync(LOCK, { recursive: true, force: true });
    else sleep(100);
  }
}

function build() {
  const started = Date.now();
  const staging = join(WORK, `out-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    const tsc = spawnSync(
      process.execPath,
      [TSC, "-p", join(ROOT, "tsconfig.build.json"), "--noCheck", "--outDir", staging],
      { cwd: ROOT, stdio: "inherit" },
    );
    if (tsc.status !== 0) {
      console.error(`build-dist: tsc --noCheck failed (exit ${tsc.status ?? tsc.signal})`);
      return 1;
    }
    const built = files(staging);
    let changed = 0;
    for (const f of built) {
      const from = join(staging, f);
      const to = join(DIST, f);
      if (existsSync(to) && readFileSync(to).equals(readFileSync(from))) continue;
      mkdirSync(dirname(to), { recursive: true });
      renameSync(from, to);
      changed++;
    }
    const keep = new Set(built);
    let removed = 0;
    for (const f of existsSync(DIST) ? files(DIST) : []) {
      if (keep.has(f)) continue;
      rmSync(join(DIST, f));
      removed++;
    }
    removeEmptyDirs(DIST);
    writeFileSync(STAMP, "");
    // The stamp carries the build's start: a source file saved during the build is newer.
    utimesSync(STAMP, new Date(started), new Date(started));
    console.error(
      `build-dist: dist/ built in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
        `(${built.length} files, ${changed} changed, ${removed} removed)`,
    );
    return 0;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function main() {
  try {
    process.exitCode = process.argv.includes("--if-stale") && !isStale() ? 0 : build();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

lock();
// Started with an IPC channel (scripts/test.mjs), it says when it holds the lock: the tests may
// start then, as every test that uses dist/ waits for the lock (test/support/built-dist.ts).
if (process.send) {
  process.send("locked", () => {
    process.disconnect();
    main();
  });
} else {
  main();
}
