#!/usr/bin/env node
// Runs every test file under test/ (or the files given) with Node's own runner through tsx,
// several files at a time, longest first. The files are listed explicitly: on Node 20,
// `--test test/` finds no .ts files and exits 0 having run nothing. `node --test` sorts the
// files it is given by name, so this starts the runner through its `run()` API instead, in
// the order of scripts/test-times.json (seconds per file, measured): a slow file started
// last would hold the whole run up alone. `--record-times` rewrites that file from this run;
// `--cpu` prints each file's CPU time (user + system, its child processes included) and the
// run's, which say more than seconds of wall on a shared machine.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { run } from "node:test";
import { spec, tap } from "node:test/reporters";
import { fileURLToPath } from "node:url";

const TIMES = fileURLToPath(new URL("./test-times.json", import.meta.url));
/** How long a file not in test-times.json is taken to last (a middling file). */
const UNKNOWN_SECONDS = 5;
/**
 * Files at a time. The tests mostly wait on servers and child processes, so on a 2-core
 * machine more files than cores keep it busy (see the README's Tests section).
 */
const DEFAULT_CONCURRENCY = "4";

/**
 * With `--cpu`, loaded into the runner and every test file's process: at exit it appends
 * the process's CPU seconds, and those of the child processes it waited for (registries,
 * servers, tsc, npm: /proc/self/stat's cutime and cstime, in clock ticks of 1/100 s), to
 * the file REGSCAN_TEST_CPU_LOG names. The runner's own line includes its test files'.
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

// The test files' processes inherit this process's flags: start again with tsx loaded.
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

/** Prints the CPU seconds `--cpu` collected, most first, and the run's total. */
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
  const runner = lines.find((l) => l.file === fileURLToPath(import.meta.url));
  const files = lines
    .filter((l) => l !== runner)
    .map((l) => ({ file: relative(process.cwd(), l.file), cpu: l.own + l.children, own: l.own }))
    .sort((a, b) => b.cpu - a.cpu);
  const fmt = (s) => s.toFixed(1).padStart(6);
  console.log(
    "# CPU seconds per file (user + system; the test process's own, then with its children):",
  );
  for (const f of files) console.log(`# ${fmt(f.own)} ${fmt(f.cpu)}  ${f.file}`);
  const total = runner ? runner.own + runner.children : files.reduce((n, f) => n + f.cpu, 0);
  console.log(
    `# CPU ${total.toFixed(1)} s in ${wallSeconds.toFixed(1)} s of wall (${files.length} files)`,
  );
}

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith(".test.ts")) out.push(relative(process.cwd(), path));
  }
  return out;
}

function readTimes() {
  try {
    return JSON.parse(readFileSync(TIMES, "utf8"));
  } catch {
    return {};
  }
}

const args = process.argv.slice(2);
const record = args.includes("--record-times");
const given = args.filter((a) => a !== "--record-times" && a !== "--cpu");
const files = given.length > 0 ? given : findTests("test");
if (files.length === 0) {
  console.error("run-tests: no test files found under test/");
  process.exit(1);
}
const times = readTimes();
const seconds = (file) => times[file.split("\\").join("/")] ?? UNKNOWN_SECONDS;
// Longest first; Array#sort is stable, so equal times keep the files' name order.
const ordered = [...files].sort((a, b) => seconds(b) - seconds(a));

const concurrency = Number(process.env.REGSCAN_TEST_CONCURRENCY ?? DEFAULT_CONCURRENCY);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(`run-tests: REGSCAN_TEST_CONCURRENCY must be a whole number of at least 1`);
  process.exit(1);
}

// A file still running after this long is stuck (the slowest, the package tarball test,
// bounds its own set-up at 10 minutes for a loaded machine).
const stream = run({ files: ordered, concurrency, timeout: 600_000 });
/** How long a test file's process takes to start (tsx included), on top of its tests. */
const STARTUP_SECONDS = 1;
/** Seconds of each file: start-up and its top-level tests (hooks included), for --record-times. */
const measured = {};
const cwd = process.cwd();
stream.on("test:fail", () => {
  process.exitCode = 1;
});
if (record) {
  for (const event of ["test:pass", "test:fail"]) {
    stream.on(event, (data) => {
      if (data.nesting !== 0 || data.file === undefined) return;
      const file = relative(cwd, data.file).split("\\").join("/");
      measured[file] =
        (measured[file] ?? STARTUP_SECONDS) + (data.details?.duration_ms ?? 0) / 1000;
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
  if (!record) return;
  const merged = { ...times, ...measured };
  const sorted = Object.fromEntries(
    Object.entries(merged)
      .filter(([file]) => findTests("test").includes(file))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([file, s]) => [file, Math.round(s * 10) / 10]),
  );
  writeFileSync(TIMES, `${JSON.stringify(sorted, null, 2)}\n`);
});
