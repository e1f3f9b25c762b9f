/**
 * The warmer's thread below the API thread's priority (src/daemon/warmer-priority.ts): the
 * daemon lowers its main thread alone, once the API thread runs; a restarted API thread gets
 * the process's priority back where the process may raise it, and a warning where it may not;
 * a stopped daemon gives the thread its priority back. Nice values are read from
 * /proc/self/task, one per thread (Linux's; elsewhere nothing may change).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { getPriority } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import pino from "pino";
import { configSchema } from "../../src/config/schema.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { WarmerPriority } from "../../src/daemon/warmer-priority.js";
import { makeTempDir } from "../support/processes.js";
import { servingAgain, startBareApiThread } from "./bare-api-thread.js";

const linux = process.platform === "linux";

/** Each thread of this process (its id) and its nice value. */
function threadNices(): Map<number, number> {
  const nices = new Map<number, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    } catch {
      continue; // ended meanwhile
    }
    // After the command's closing parenthesis: state is field 3, nice field 19.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    nices.set(Number(tid), Number(fields[16]));
  }
  return nices;
}

/** The threads of `after` that `before` did not have, with their nice values. */
function newThreads(before: Map<number, number>, after: Map<number, number>): number[] {
  return [...after].filter(([tid]) => !before.has(tid)).map(([, nice]) => nice);
}

/** Whether this process may raise a thread's priority back (root, CAP_SYS_NICE or RLIMIT_NICE). */
function mayRaise(): boolean {
  return process.getuid?.() === 0;
}

describe("the warmer's thread priority", { skip: !linux && "Linux only (per-thread nice)" }, () => {
  const dir = makeTempDir("regscan-warmer-priority-");

  test("the daemon lowers its warmer's thread alone, after the API thread has started", async () => {
    const original = getPriority(0);
    const before = threadNices();
    const daemon = await Daemon.start({
      config: configSchema.parse({
        listen: "127.0.0.1:0",
        // Nothing listens there: scans fail, which is not what this test looks at.
        repositories: ["127.0.0.1:9/team/app"],
        registry: { insecureHosts: ["127.0.0.1:9"] },
        cache: `sqlite:${join(dir, "daemon.db")}`,
        server: { shutdownTimeout: "2s", apiThread: true, warmerNice: 19 },
      }),
      logger: pino({ level: "silent" }),
    });
    try {
      const during = threadNices();
      assert.equal(during.get(process.pid), Math.max(original, 19), "the main thread");
      const started = newThreads(before, during);
      assert.ok(started.length >= 1, "the API thread is among the threads started");
      assert.deepEqual(
        [...new Set(started)],
        [original],
        "threads the daemon started keep the process's priority",
      );
      const res = await fetch(`http://127.0.0.1:${daemon.address.port}/healthz`);
      assert.equal(res.status, 200);
    } finally {
      await daemon.stop();
    }
    assert.equal(
      getPriority(0),
      mayRaise() ? original : Math.max(original, 19),
      "a stopped daemon gives the thread its priority back where it may",
    );
  });

  test("with the API on the warmer's thread, the default leaves the priority alone", async () => {
    const original = getPriority(0);
    const daemon = await Daemon.start({
      config: configSchema.parse({
        listen: "127.0.0.1:0",
        // Nothing listens there: scans fail, which is not what this test looks at.
        repositories: ["127.0.0.1:9/team/app"],
        registry: { insecureHosts: ["127.0.0.1:9"] },
        cache: "memory:",
        server: { shutdownTimeout: "2s", apiThread: true },
      }),
      logger: pino({ level: "silent" }),
    });
    try {
      assert.equal(getPriority(0), original);
    } finally {
      await daemon.stop();
    }
  });

  test("a restarted API thread starts at the process's priority where it may, with a warning where not", async () => {
    const original = getPriority(0);
    const logs: string[] = [];
    const logger = pino({ level: "info" }, { write: (s: string) => logs.push(s) });
    let priority: WarmerPriority | undefined;
    const thread = await startBareApiThread(join(dir, "r.db"), logger, (start) =>
      priority ? priority.startThread(start) : start(),
    );
    priority = WarmerPriority.lower(19, logger);
    const lowered = Math.max(original, 19);
    const url = `http://127.0.0.1:${thread.address.port}/healthz`;
    try {
      assert.equal(priority.nice, lowered);
      const before = threadNices();
      await thread.crash();
      await servingAgain(url);
      const started = newThreads(before, threadNices());
      assert.ok(started.length >= 1, "the restarted thread is new");
      assert.equal(getPriority(0), lowered, "the warmer's thread is lowered again");
      if (mayRaise()) {
        assert.deepEqual([...new Set(started)], [original]);
        assert.doesNotMatch(logs.join(""), /starts at the warmer's lowered priority/);
      } else {
        assert.deepEqual([...new Set(started)], [lowered]);
        assert.match(logs.join(""), /starts at the warmer's lowered priority/);
      }
    } finally {
      await thread.close(1_000);
      priority.restore();
    }
  });
});
