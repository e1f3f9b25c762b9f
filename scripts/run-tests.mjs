#!/usr/bin/env node
// Runs every test file of a tier under test/ (or the files given) with Node's own runner through tsx,
// several test files to a process and several processes at a time. The files are listed
// explicitly: on Node 20, `--test test/` finds no .ts files and exits 0 having run nothing.
// `node --test` sorts the files it is given by name and starts a process for each, so this
// starts the runner through its `run()` API instead, on generated entry modules that take
// test files from a queue this process serves: a process of its own costs a file ~0.3 s of CPU
// to start node and tsx and as much again to load the source modules it tests, more than most
// files' tests. Each file runs as a suite named by its path, its module imported only when the
// file before it in the process has finished (its `after` hooks included), so that its
// top-level hooks and module-level set-up are its own. The queue is ordered longest first by
// scripts/test-times.json (seconds per file, measured), and each process takes the next file
// as it finishes one, so that the processes end together however the files' times differ from
// the recorded ones (fixed groups balanced by those times left one group the run's critical
// path: 82.8 s against 65.4 s for the same files on the same machine). Which process ran which
// files, in order, is printed when a test fails, to run them again together.
// `--record-times` rewrites test-times.json from this run; `--cpu` prints each process's CPU
// time (user + system, its child processes included) with the files it ran, and the run's,
// which say more than seconds of wall on a shared machine.
//
// Two tiers, told apart by the file's name: `*.test.ts` is the everyday suite (`npm test`),
// `*.scale-test.ts` the load and scale tier (`--scale`, `npm run test:scale`: the
// registry-fleet simulator's own tests, issue 13's acceptance at CI size, the read load).
// No name ends in both. Every run of a whole tier first checks that every file under test/
// that defines tests is in one of them (checkTiers): a test file named otherwise would run
// in neither, and pass by never running.
import { spawnSync } from "node:child_process";
import {
  appendFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { run } from "node:test";
import { spec, tap } from "node:test/reporters";
import { fileURLToPath, pathToFileURL } from "node:url";

const TIMES = fileURLToPath(new URL("./test-times.json", import.meta.url));
/** How long a file not in test-times.json is taken to last (a middling file). */
const UNKNOWN_SECONDS = 5;
/**
 * Processes at a time. The tests mostly wait on servers and child processes, so on a 2-core
 * machine more processes than cores keep it busy: 4 used 1.52 cores, 6 1.84 (README: Tests).
 */
const DEFAULT_CONCURRENCY = "6";
/** A test file still running after this long is stuck (the package tarball test bounds its own set-up at 10 minutes for a loaded machine). */
const FILE_TIMEOUT_MS = 600_000;

/**
 * With `--cpu`, loaded into the runner and every test process: at exit it appends the
 * process's CPU seconds, and those of the child processes it waited for (registries, servers,
 * tsc, npm: /proc/self/stat's cutime and cstime, in clock ticks of 1/100 s), to the file
 * REGSCAN_TEST_CPU_LOG names. The runner's own line includes its test processes'.
 */
const CPU_HOOK = `import { appendFileSync, readFileSync } from "node:fs";
import { isMainThread } from "node:worker_threads";
// A worker thread (it inherits the flags) would count its process a second time.
if (isMainThread) process.once("exit", () => {
  const log = process.env.REGSCAN_TEST_CPU_LOG;
  if (!log) return;
  let children = 0;
  try {
    const f = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
    children = (Number(f[13]) + Number(f[14])) / 100;
  } catch {}
  const own = process.cpuUsage();
  appendFileSync(log, JSON.stringify({ file: process.argv[1], own: (own.user + own.system) / 1e6, children }) + "\\n");
});`;

// The test processes inherit this process's flags: start again with tsx loaded.
if (!process.execArgv.some((a) => a.includes("tsx"))) {
  const cpu = process.argv.includes("--cpu");
  const dir = cpu ? mkdtempSync(join(tmpdir(), "regscan-test-cpu-")) : undefined;
  const hook = cpu ? ["--import", `data:text/javascript,${encodeURIComponent(CPU_HOOK)}`] : [];
  const started = performance.now();
  const again = spawnSync(
    process.execPath,
    ["--import", "tsx", ...hook, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    {
      stdio: "inherit",
      env: dir ? { ...process.env, REGSCAN_TEST_CPU_LOG: join(dir, "cpu.jsonl") } : process.env,
    },
  );
  if (dir) {
    reportCpu(join(dir, "cpu.jsonl"), (performance.now() - started) / 1000);
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(again.status ?? 1);
}

/**
 * Prints the CPU seconds `--cpu` collected, most first, each process's with the files it ran
 * (the runner writes a `groups` line naming them), and the run's total.
 */
function reportCpu(log, wallSeconds) {
  let lines = [];
  try {
    lines = readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
  } catch {
    console.error("run-tests: no CPU figures were written");
    return;
  }
  const groups = Object.assign({}, ...lines.filter((l) => l.groups).map((l) => l.groups));
  const runner = lines.find((l) => l.file === fileURLToPath(import.meta.url));
  const processes = lines
    .filter((l) => l !== runner && l.file !== undefined)
    .map((l) => ({
      files: groups[l.file] ?? [relative(process.cwd(), l.file)],
      cpu: l.own + l.children,
      own: l.own,
    }))
    .sort((a, b) => b.cpu - a.cpu);
  const fmt = (s) => s.toFixed(1).padStart(6);
  console.log(
    "# CPU seconds per test process (user + system; the process's own, then with its children), and its files:",
  );
  for (const p of processes) {
    console.log(`# ${fmt(p.own)} ${fmt(p.cpu)}  ${p.files[0]}`);
    for (const f of p.files.slice(1)) console.log(`# ${" ".repeat(15)}${f}`);
  }
  const total = runner ? runner.own + runner.children : processes.reduce((n, p) => n + p.cpu, 0);
  const files = processes.reduce((n, p) => n + p.files.length, 0);
  console.log(
    `# CPU ${total.toFixed(1)} s in ${wallSeconds.toFixed(1)} s of wall (${files} files in ${processes.length} process${processes.length === 1 ? "" : "es"})`,
  );
}

/** The tiers and how their files' names end (disjoint: "x.scale-test.ts" does not end in ".test.ts"). */
const TIERS = { everyday: ".test.ts", scale: ".scale-test.ts" };

/** Every file under `dir`, relative to the working directory, by name. */
function listFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path));
    else out.push(relative(process.cwd(), path));
  }
  return out;
}

function findTests(dir, tier) {
  return listFiles(dir).filter((f) => f.endsWith(TIERS[tier]));
}

/**
 * Fails the run when a file under test/ that defines tests belongs to no tier: one that
 * imports `test`, `it`, `describe` or `suite` from node:test (as a value) must be named for a
 * tier, or be imported by another file under test/ (a shared contract, such as the stores'
 * store-contract.ts, whose tests run in the files that call it); and a name that reads as a
 * test (`.spec.ts`, `-test.ts`, `.tests.ts`, ...) must be a tier's. What it finds is printed,
 * naming the tiers' suffixes.
 */
function checkTiers(dir) {
  const files = listFiles(dir).filter((f) => /\.[cm]?[jt]s$/.test(f));
  const inTier = (f) => Object.values(TIERS).some((suffix) => f.endsWith(suffix));
  const sources = new Map(files.map((f) => [f, readFileSync(f, "utf8")]));
  const imported = new Set();
  for (const [file, source] of sources) {
    for (const m of source.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      const target = join(file, "..", m[1] ?? "");
      imported.add(target.replace(/\.[cm]?js$/, ".ts"));
      imported.add(target);
    }
  }
  const definesTests = (source) =>
    [...source.matchAll(/import\s*\{([^}]*)\}\s*from\s*["']node:test["']/g)].some((m) =>
      (m[1] ?? "")
        .split(",")
        .map((n) => n.trim())
        .some((n) => /^(test|it|describe|suite)(\s+as\s+\w+)?$/.test(n)),
    );
  const stray = files.filter(
    (f) =>
      !inTier(f) &&
      (/[.-](test|tests|spec)\.[cm]?[jt]s$/.test(f) ||
        (definesTests(sources.get(f)) && !imported.has(f))),
  );
  if (stray.length > 0) {
    console.error(
      `run-tests: in neither tier (a test file's name ends in ${Object.values(TIERS).join(" or ")}):\n  ${stray.join("\n  ")}`,
    );
    process.exit(1);
  }
}

function readTimes() {
  try {
    return JSON.parse(readFileSync(TIMES, "utf8"));
  } catch {
    return {};
  }
}

/** A whole number of at least 1 from the environment, else `fallback`; exits on a bad one. */
function countFromEnv(name, fallback) {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`run-tests: ${name} must be a whole number of at least 1`);
    process.exit(1);
  }
  return n;
}

/**
 * A test process's entry module: it asks the runner for a file (over the queue's socket), runs
 * it as a suite named by its path, and asks for the next once that one has finished (tests and
 * hooks), until the queue is empty. So each file's module is imported only once the file before
 * it in the process has finished, its top-level `before`/`after`/`beforeEach` hooks stay its own,
 * its module-level set-up runs just before its tests, and a stuck file fails alone after
 * FILE_TIMEOUT_MS. The wait is on a promise made in the suite's own context: node:test files a
 * `test()` or hook under the suite whose async context it runs in, and a continuation of a
 * promise made elsewhere runs in that one's. A support module's top-level `after` would belong
 * to the first file that loaded it: those that must run after every file are put in the global
 * set `afterEachFile`.
 */
function entrySource(socketPath, entry) {
  return `// Generated by scripts/run-tests.mjs: test files from the runner's queue, one after another.
import { connect } from "node:net";
import { after, describe } from "node:test";
// What test support modules (loaded once, under the first file that imports them) ask to run
// at the end of every file: test/support/processes.ts stops the servers a file left running.
const afterEachFile = new Set();
globalThis[Symbol.for("regscan.run-tests.afterEachFile")] = afterEachFile;
const socket = connect(${JSON.stringify(socketPath)});
socket.setEncoding("utf8");
let buffered = "";
const waiting = [];
socket.on("data", (chunk) => {
  buffered += chunk;
  for (let nl = buffered.indexOf("\\n"); nl >= 0; nl = buffered.indexOf("\\n")) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    waiting.shift()?.resolve(JSON.parse(line));
  }
});
socket.on("error", (err) => {
  for (const w of waiting.splice(0)) w.reject(err);
});
socket.on("close", () => {
  for (const w of waiting.splice(0)) w.reject(new Error("run-tests: the runner's queue closed"));
});
function next() {
  return new Promise((resolve, reject) => {
    waiting.push({ resolve, reject });
    socket.write(${JSON.stringify(`next ${entry}\n`)});
  });
}
for (let job = await next(); job.file !== undefined; job = await next()) {
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  describe(job.file, { timeout: ${FILE_TIMEOUT_MS} }, async () => {
    try {
      await import(job.url);
    } finally {
      after(async () => {
        try {
          for (const fn of afterEachFile) await fn();
        } finally {
          done();
        }
      });
    }
  });
  await finished;
}
socket.end();
`;
}

const args = process.argv.slice(2);
const record = args.includes("--record-times");
const tier = args.includes("--scale") ? "scale" : "everyday";
const given = args.filter((a) => !["--record-times", "--cpu", "--scale"].includes(a));
if (given.length === 0) checkTiers("test");
const files = given.length > 0 ? given : findTests("test", tier);
if (files.length === 0) {
  console.error(`run-tests: no ${TIERS[tier]} files found under test/`);
  process.exit(1);
}
const times = readTimes();
const slash = (file) => file.split("\\").join("/");
const seconds = (file) => times[slash(file)] ?? UNKNOWN_SECONDS;

const concurrency = countFromEnv("REGSCAN_TEST_CONCURRENCY", DEFAULT_CONCURRENCY);
// Files named on the command line run in one process in the order given (to run a file again
// beside the ones a failing process ran before it), unless REGSCAN_TEST_PROCESSES says more (as
// many as files: each file alone, as a check that none needs another's state).
const processCount = Math.min(
  files.length,
  countFromEnv("REGSCAN_TEST_PROCESSES", given.length > 0 ? 1 : concurrency),
);
// The queue: longest first (Array#sort is stable, so equal times keep the files' name order),
// so that no long file starts last and holds the run up alone; in one process, as given.
const queue = processCount === 1 ? [...files] : [...files].sort((a, b) => seconds(b) - seconds(a));

const entries = mkdtempSync(join(tmpdir(), "regscan-tests-"));
process.on("exit", () => rmSync(entries, { recursive: true, force: true }));
// Interrupted, it still removes its entry modules (a signal skips the "exit" event).
for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
]) {
  process.once(signal, () => process.exit(code));
}
/** The files each test process took from the queue, in order, by its entry module. */
const ranBy = {};
const entryFiles = Array.from({ length: processCount }, (_, i) => {
  const entry = join(entries, `process-${String(i + 1).padStart(2, "0")}.mjs`);
  ranBy[entry] = [];
  return entry;
});
// Each process asks for its next file on a connection of its own and says which entry it runs,
// so that what every process ran can be printed (on a failure, and for --cpu).
const queueServer = createServer((socket) => {
  socket.setEncoding("utf8");
  let buffered = "";
  socket.on("error", () => {});
  socket.on("data", (chunk) => {
    buffered += chunk;
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      const [verb, entry] = buffered.slice(0, nl).split(" ");
      buffered = buffered.slice(nl + 1);
      if (verb !== "next") continue;
      const file = queue.shift();
      if (file !== undefined) ranBy[entry]?.push(slash(file));
      socket.write(
        `${JSON.stringify(file === undefined ? {} : { file: slash(file), url: pathToFileURL(resolve(file)).href })}\n`,
      );
    }
  });
});
const socketPath = join(entries, "queue.sock");
await new Promise((resolveListen, reject) => {
  queueServer.once("error", reject);
  queueServer.listen(socketPath, resolveListen);
});
for (const entry of entryFiles) writeFileSync(entry, entrySource(socketPath, entry));
console.error(
  `run-tests: ${files.length} file${files.length === 1 ? "" : "s"} in ${processCount} process${processCount === 1 ? "" : "es"}, each taking the next file (longest first) as it finishes one`,
);

const expected = files.reduce((n, f) => n + seconds(f), 0);
const stream = run({
  files: entryFiles,
  concurrency: processCount,
  // Each file fails as stuck after FILE_TIMEOUT_MS; this bounds a process that still does not
  // end (a handle left open), beyond three times the run's expected share of a process.
  timeout: FILE_TIMEOUT_MS + (3_000 * expected) / processCount,
});
/** Seconds of each file: its suite (its module's import excluded), for --record-times. */
const measured = {};
const fileSet = new Set(files.map(slash));
stream.on("test:fail", () => {
  process.exitCode = 1;
});
if (record) {
  for (const event of ["test:pass", "test:fail"]) {
    stream.on(event, (data) => {
      if (data.nesting !== 0 || !fileSet.has(data.name)) return;
      measured[data.name] = (data.details?.duration_ms ?? 0) / 1000;
    });
  }
}
// A reader that went away (`| head`) ends the output, not the run with a stack trace.
process.stdout.on("error", (err) => {
  if (err.code !== "EPIPE") throw err;
});
const reporter = process.stdout.isTTY ? spec() : tap;
stream.compose(reporter).pipe(process.stdout);
stream.once("end", () => {
  queueServer.close();
  if (queue.length > 0) {
    // Every test process ended before the queue did (each crashed): these never ran.
    console.error(`run-tests: ${queue.length} file(s) never ran:\n  ${queue.join("\n  ")}`);
    process.exitCode = 1;
  }
  if (process.env.REGSCAN_TEST_CPU_LOG) {
    appendFileSync(process.env.REGSCAN_TEST_CPU_LOG, `${JSON.stringify({ groups: ranBy })}\n`);
  }
  if (process.exitCode === 1) {
    console.error(
      "run-tests: what each test process ran, in order (`node scripts/run-tests.mjs FILE...` runs files in one process in the order given):",
    );
    for (const ran of Object.values(ranBy)) console.error(`  ${ran.join(" ")}`);
  }
  if (!record) return;
  const merged = { ...times, ...measured };
  const all = [...findTests("test", "everyday"), ...findTests("test", "scale")].map(slash);
  const sorted = Object.fromEntries(
    Object.entries(merged)
      .filter(([file]) => all.includes(file))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([file, s]) => [file, Math.round(s * 10) / 10]),
  );
  writeFileSync(TIMES, `${JSON.stringify(sorted, null, 2)}\n`);
});
