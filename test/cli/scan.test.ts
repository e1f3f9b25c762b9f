/**
 * `regscan scan` against the real registry, into a sqlite cache in a temporary directory:
 * the summary, the JSON form with requests by method, the exit status, no progress bar when
 * the output is not a terminal, and repository leases between scans. The CLI's `main` runs
 * in this process; the first scan runs the real process (the command's smoke test), and so
 * do the scans that hold a lease while another runs or are killed holding it.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cliCommand, runCli, runCliInProcess, startCliInProcess } from "../support/cli.js";
import { type FaultRequest, withFault } from "../support/faults.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import { waitFor } from "../support/wait-for.js";

let registry: RegistryHandle;
let dir: string;
let cacheUrl: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "regscan-cli-scan-"));
  cacheUrl = `sqlite:${join(dir, "cache.db")}`;
  registry = await startRegistry();
  const builder = new ImageBuilder(registry);
  try {
    const one = await builder.pushImage("cli/app", ["1.0", "1.1"], {
      seed: "app-1",
      labels: { a: "b" },
    });
    await builder.tagMany("cli/app", { tags: ["latest", "stable"], manifest: one });
    await builder.pushIndex("cli/multi", ["v1"], { seed: "multi" });
  } finally {
    await builder.close();
  }
});

after(async () => {
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ DOCKER_CONFIG: join(dir, "no-docker-config") });

interface Summary {
  repositories: Array<{
    repository: string;
    outcome: string;
    ok: boolean;
    tags: number;
    refreshed: number;
    unchanged: number;
    fresh: number;
    excluded: number;
    errors: number;
    error?: { code: string; message: string };
  }>;
  requests: { total: number; byMethod: Record<string, number> };
}

describe("regscan scan", () => {
  it("scans repositories, prints a JSON summary with requests by method, then finds them fresh", async () => {
    const args = [
      "scan",
      `${registry.host}/cli/app`,
      `${registry.host}/cli/multi`,
      "--cache",
      cacheUrl,
      "--insecure-host",
      registry.host,
      "--output",
      "json",
    ];
    // The real process: the command's smoke test.
    const first = await runCli(args, { env: env() });
    assert.equal(first.code, 0, first.stderr);
    const s1 = JSON.parse(first.stdout) as Summary;
    assert.deepEqual(
      s1.repositories.map((r) => [r.repository, r.outcome, r.tags, r.refreshed, r.ok]),
      [
        [`${registry.host}/cli/app`, "scanned", 4, 4, true],
        [`${registry.host}/cli/multi`, "scanned", 1, 1, true],
      ],
    );
    assert.equal(s1.requests.byMethod.HEAD, 5);
    assert.ok((s1.requests.byMethod.GET ?? 0) > 0);
    assert.equal(s1.requests.total, (s1.requests.byMethod.GET ?? 0) + 5);
    assert.doesNotMatch(first.stderr, /█|░/, "no progress bar when not on a terminal");

    registry.resetRequests();
    const second = await runCliInProcess(args, { env: env() });
    assert.equal(second.code, 0, second.stderr);
    const s2 = JSON.parse(second.stdout) as Summary;
    assert.deepEqual(
      s2.repositories.map((r) => [r.fresh, r.refreshed]),
      [
        [4, 0],
        [1, 0],
      ],
    );
    assert.equal(s2.requests.byMethod.HEAD, undefined);
    const manifests = registry.requests().filter((r) => r.path.includes("/manifests/"));
    assert.deepEqual(manifests, [], "no manifest requests on the second scan");
  });

  it("prints a table and exits 1 when a repository fails", async () => {
    const r = await runCliInProcess(
      [
        "scan",
        `${registry.host}/cli/app`,
        `${registry.host}/cli/missing`,
        "--cache",
        cacheUrl,
        "--insecure-host",
        registry.host,
      ],
      { env: env() },
    );
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(
      lines[0] ?? "",
      /^REPOSITORY\s+TAGS\s+REFRESHED\s+UNCHANGED\s+EXCLUDED\s+ERRORS\s+RESULT$/,
    );
    assert.match(lines[1] ?? "", /cli\/app\s+4\s+0\s+4\s+0\s+0\s+scanned$/);
    assert.match(lines[2] ?? "", /cli\/missing\s+0\s+0\s+0\s+0\s+0\s+failed: NAME_UNKNOWN/);
    assert.match(r.stdout, /HTTP requests: \d+ GET/);
  });

  it("applies tag filters and refuses bad input with a one-line message", async () => {
    const r = await runCliInProcess(
      [
        "scan",
        `${registry.host}/cli/app`,
        "--cache",
        `sqlite:${join(dir, "filtered.db")}`,
        "--insecure-host",
        registry.host,
        "--include",
        "1.*",
        "--output",
        "json",
      ],
      { env: env() },
    );
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Summary & { repositories: Array<{ filteredOut: number }> };
    assert.equal(s.repositories[0]?.tags, 2);
    assert.equal(s.repositories[0]?.filteredOut, 2);
    assert.equal(s.requests.byMethod.HEAD, 2);

    const bad = await runCliInProcess(["scan", "Not/Valid", "--cache", cacheUrl], { env: env() });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^regscan: invalid image reference "Not\/Valid"/);
    const tag = await runCliInProcess(
      ["scan", `${registry.host}/cli/app:1.0`, "--cache", cacheUrl],
      {
        env: env(),
      },
    );
    assert.equal(tag.code, 1);
    assert.match(tag.stderr, /takes repositories, not tags/);
    const store = await runCliInProcess(
      ["scan", `${registry.host}/cli/app`, "--cache", "bogus://x"],
      {
        env: env(),
      },
    );
    assert.equal(store.code, 1);
    assert.match(store.stderr, /bogus/);
  });

  it("draws a progress bar when stderr is a terminal", async () => {
    const run = startCliInProcess(
      [
        "scan",
        `${registry.host}/cli/app`,
        "--cache",
        `sqlite:${join(dir, "tty.db")}`,
        "--insecure-host",
        registry.host,
      ],
      { env: env(), stderrTty: { columns: 100 } },
    );
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /4\/4 .*cli\/app/, "the bar shows the tags checked");
    assert.match(r.stdout, /cli\/app\s+4\s+4/);
  });
});

/** Starts `regscan ...args` in the background (for scans that are killed or overlapped). */
function startCli(args: string[]): ChildProcess {
  const { command, args: argv } = cliCommand(args);
  return spawn(command, argv, { env: { ...process.env, ...env() }, stdio: "ignore" });
}

/** Waits (bounded) until the registry has been asked for a manifest: the lease is taken. */
function untilManifestRequested(): Promise<void> {
  return waitFor(() => registry.requests().some((r) => r.path.includes("/manifests/")), {
    what: "the background scan to reach the manifests",
    timeoutMs: 60_000,
  });
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });

describe("regscan scan and repository leases", () => {
  it("takes over at once the lease of a scan that was killed", async () => {
    const db = `sqlite:${join(dir, "killed.db")}`;
    const args = ["scan", `${registry.host}/cli/app`, "--cache", db];
    const flags = ["--insecure-host", registry.host, "--output", "json"];
    registry.resetRequests();
    const slowManifests = (req: FaultRequest) =>
      req.path.includes("/manifests/") ? { delayMs: 10_000 } : undefined;
    await withFault(registry, slowManifests, async () => {
      const victim = startCli([...args, ...flags]);
      try {
        await untilManifestRequested();
        victim.kill("SIGKILL");
        await exited(victim);
      } finally {
        victim.kill("SIGKILL");
      }
    });
    const r = await runCliInProcess([...args, ...flags], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Summary;
    assert.deepEqual(
      s.repositories.map((x) => [x.outcome, x.refreshed, x.ok]),
      [["scanned", 4, true]],
    );
  });

  it("says so and exits 1 while another scan holds the lease, and waits with --wait-lease", async () => {
    const db = `sqlite:${join(dir, "busy.db")}`;
    const args = [
      "scan",
      `${registry.host}/cli/app`,
      "--cache",
      db,
      "--insecure-host",
      registry.host,
    ];
    registry.resetRequests();
    // The busy scan's manifest requests wait at this gate (at most 60 s) until it opens.
    let open = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
      setTimeout(resolve, 60_000).unref();
    });
    const gated = async (req: FaultRequest) => {
      if (req.path.includes("/manifests/")) await gate;
      return undefined;
    };
    let busy: ChildProcess | undefined;
    try {
      await withFault(registry, gated, async () => {
        const holder = startCli(args);
        busy = holder;
        await untilManifestRequested();
        const skipped = await runCliInProcess([...args, "--output", "json"], { env: env() });
        assert.equal(skipped.code, 1, "not scanned is not a success");
        const s = JSON.parse(skipped.stdout) as Summary;
        assert.deepEqual(
          s.repositories.map((x) => [x.outcome, x.ok]),
          [["skipped-lease", false]],
        );
        assert.match(
          skipped.stderr,
          new RegExp(`another scan holds its lease \\(process ${holder.pid} on .*--wait-lease`),
        );
        open();
        const waited = await runCliInProcess([...args, "--output", "json", "--wait-lease", "60"], {
          env: env(),
        });
        assert.equal(waited.code, 0, waited.stderr);
        const w = JSON.parse(waited.stdout) as Summary;
        assert.equal(w.repositories[0]?.outcome, "scanned");
        assert.equal(await exited(holder), 0, "the first scan finished normally");
      });
    } finally {
      open();
      busy?.kill("SIGKILL");
    }
  });
});
