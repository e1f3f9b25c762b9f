/**
 * A reader that leaves early (`regscan tags ... | head`, Ctrl-C reaching `cat` in
 * `regscan scan ... | cat`) closes the pipe under stdout. The CLI, run as a child process
 * against the real registry with its stdout closed before it writes, ends quietly: no
 * unhandled 'error' event, no stack trace, and the command's own exit status.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cliCommand } from "../support/cli.js";
import { type FaultHook, withFault } from "../support/faults.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";

let registry: RegistryHandle;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "regscan-cli-epipe-"));
  registry = await startRegistry();
  const builder = new ImageBuilder(registry);
  try {
    const image = await builder.pushImage("pipe/app", ["v0"], { seed: "pipe" });
    await builder.tagMany("pipe/app", {
      tags: Array.from({ length: 300 }, (_, i) => `v${i + 1}`),
      manifest: image,
    });
  } finally {
    await builder.close();
  }
});

after(async () => {
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Runs `regscan ...args` with the read end of its stdout closed at once, so that its first
 * write meets a closed pipe; `whileRunning` may act on the child (send it a signal).
 */
function runWithClosedStdout(
  args: string[],
  whileRunning?: (child: ReturnType<typeof spawn>) => void,
): Promise<Ended> {
  const { command, args: argv } = cliCommand(args);
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...argv], {
      env: { ...process.env, DOCKER_CONFIG: join(dir, "none") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
    whileRunning?.(child);
  });
}

function assertQuiet(run: Ended): void {
  assert.doesNotMatch(run.stderr, /Unhandled 'error' event|EPIPE|\n\s+at /, run.stderr);
}

describe("a closed stdout", () => {
  it("regscan tags | head: exit 0, nothing on stderr", async () => {
    const run = await runWithClosedStdout([
      "tags",
      `${registry.host}/pipe/app`,
      "--insecure-host",
      registry.host,
    ]);
    assertQuiet(run);
    assert.equal(run.stderr, "");
    assert.equal(run.code, 0);
  });

  it("regscan get -o json | head: exit 0, nothing on stderr", async () => {
    const cache = `sqlite:${join(dir, "get.db")}`;
    const scan = await runWithClosedStdout([
      "scan",
      `${registry.host}/pipe/app`,
      "--cache",
      cache,
      "--insecure-host",
      registry.host,
    ]);
    assertQuiet(scan);
    assert.equal(scan.code, 0, scan.stderr);
    const get = await runWithClosedStdout(["get", `${registry.host}/pipe/app`, "--cache", cache]);
    assertQuiet(get);
    assert.equal(get.code, 0, get.stderr);
  });

  it("Ctrl-C during regscan scan | cat: no stack trace, the scan's own exit status", async () => {
    let interrupted = false;
    let child: ReturnType<typeof spawn> | undefined;
    // Manifests answer slowly, so that the scan is surely under way when Ctrl-C comes.
    const interruptAtManifests: FaultHook = (req) => {
      if (!req.path.includes("/manifests/")) return undefined;
      if (!interrupted) {
        interrupted = true;
        child?.kill("SIGINT");
      }
      return { delayMs: 500 };
    };
    await withFault(registry, interruptAtManifests, async () => {
      const run = await runWithClosedStdout(
        [
          "scan",
          `${registry.host}/pipe/app`,
          "--cache",
          `sqlite:${join(dir, "interrupted.db")}`,
          "--insecure-host",
          registry.host,
        ],
        (c) => {
          child = c;
        },
      );
      assert.ok(interrupted, "the scan reached the manifests");
      assertQuiet(run);
      assert.equal(run.signal, null);
      // An interrupted scan did not finish its work: a failure, but not a crash.
      assert.equal(run.code, 1, run.stderr);
    });
  });
});
