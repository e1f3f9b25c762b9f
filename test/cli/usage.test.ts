/**
 * What the CLI says when it is used wrongly: a usage error is one line that says where the
 * full usage is (not the whole help), `--help` shows no `(default: [])`, `tags` has no
 * `--platform` to ignore, and `scan` refuses a tag pattern that cannot compile before it
 * contacts the registry. Run through the CLI's `main` in this process, the program the binary
 * runs (each command's own test file has one run of the real process).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCliInProcess } from "../support/cli.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";

let registry: RegistryHandle;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "regscan-cli-usage-"));
  registry = await startRegistry();
  const builder = new ImageBuilder(registry);
  try {
    await builder.pushImage("usage/app", ["v1"], { seed: "usage" });
  } finally {
    await builder.close();
  }
  registry.resetRequests();
});

after(async () => {
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("usage errors", () => {
  it("are one line naming the command's --help, exit 1", async () => {
    const cases: [string[], string][] = [
      [["tags"], `regscan: missing required argument 'image' (see "regscan tags --help")\n`],
      [["get", "x", "--bogus"], `regscan: unknown option '--bogus' (see "regscan get --help")\n`],
      [["tagz"], `regscan: unknown command 'tagz' (Did you mean tags?) (see "regscan --help")\n`],
      [
        ["config", "check", "--nope"],
        `regscan: unknown option '--nope' (see "regscan config check --help")\n`,
      ],
    ];
    for (const [args, stderr] of cases) {
      const r = await runCliInProcess(args);
      assert.equal(r.stderr, stderr, args.join(" "));
      assert.equal(r.stdout, "");
      assert.equal(r.code, 1);
    }
  });

  it("tags takes no --platform (a tag list is the same for every platform)", async () => {
    const r = await runCliInProcess([
      "tags",
      `${registry.host}/usage/app`,
      "--platform",
      "linux/arm64",
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `regscan: unknown option '--platform' (see "regscan tags --help")\n`);
    const help = await runCliInProcess(["tags", "--help"]);
    assert.doesNotMatch(help.stdout, /--platform/);
    // inspect and scan describe images, so they keep it.
    assert.match((await runCliInProcess(["inspect", "--help"])).stdout, /--platform/);
  });

  it("--help shows no empty-list defaults, and keeps the others", async () => {
    for (const command of ["tags", "inspect", "scan", "get", "serve", "config check"]) {
      const help = await runCliInProcess([...command.split(" "), "--help"]);
      assert.equal(help.code, 0, help.stderr);
      assert.doesNotMatch(help.stdout, /default: \[\]/, command);
    }
    const scan = await runCliInProcess(["scan", "--help"]);
    assert.match(scan.stdout, /--insecure-host <host>\s+host allowed to use plain HTTP/);
    assert.match(scan.stdout, /\(default: "text"\)/);
  });

  it("scan refuses a tag pattern that cannot compile before contacting the registry", async () => {
    for (const flag of ["--include", "--exclude"]) {
      const r = await runCliInProcess(
        [
          "scan",
          `${registry.host}/usage/app`,
          flag,
          "/([/",
          "--cache",
          `sqlite:${join(dir, "never.db")}`,
          "--insecure-host",
          registry.host,
        ],
        { env: { DOCKER_CONFIG: join(dir, "none") } },
      );
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^regscan: ${flag}: invalid tag filter "/\\(\\[/"`));
    }
    assert.deepEqual(registry.requests(), []);
  });
});
