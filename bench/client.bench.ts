/**
 * The registry client against skopeo on the same local registry in the same run:
 * `regscan tags` vs `skopeo list-tags` on a 5,000-tag repository (both as processes), and
 * inspecting 200 tags with the library (its own concurrency) vs 200 `skopeo inspect`
 * processes (run a few at a time). Writes bench/results/client.json and prints the ratios.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import PQueue from "p-queue";
import { parseImageName } from "../src/image/ref.js";
import { Credentials } from "../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../src/registry/factory.js";
import { ImageBuilder } from "../test/support/image-builder.js";
import { cleanupAll, requireBinary } from "../test/support/processes.js";
import { startRegistry } from "../test/support/registry.js";

const ROUNDS = 3;
const TAG_COUNT = 5000;
const INSPECT_COUNT = 200;
const LIBRARY_CONCURRENCY = 16;
// skopeo is one process per image; more at once than cores only adds contention.
const SKOPEO_CONCURRENCY = Math.max(2, Math.min(8, availableParallelism()));

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 },
      (err, stdout, stderr) => {
        if (err)
          reject(new Error(`${command} ${args.join(" ")} failed: ${stderr}`, { cause: err }));
        else resolve(stdout);
      },
    );
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function main(): Promise<void> {
  const skopeo = requireBinary("skopeo", "skopeo");
  const reg = await startRegistry({ mode: "anonymous", proxy: false });
  const host = reg.host;
  const builder = new ImageBuilder(reg);
  const tags = Array.from({ length: TAG_COUNT }, (_, i) => `v${i}`);
  await builder.tagMany("many", { tags, manifest: await builder.pushImage("many", undefined) });
  const inspectTags: string[] = [];
  const queue = new PQueue({ concurrency: 8 });
  for (let i = 0; i < INSPECT_COUNT; i++) {
    const tag = `img-${i}`;
    inspectTags.push(tag);
    // Every tag its own image, so nothing is shared that skopeo would have to fetch again.
    void queue.add(() => builder.pushImage("images", [tag], { labels: { n: String(i) } }));
  }
  await queue.onIdle();
  await builder.close();

  const skopeoArgs = ["--tls-verify=false", "--no-creds"];
  const cli = builtCli(["tags", `${host}/many`, "--insecure-host", host]);
  const checkOurs = (await run(cli.command, cli.args)).trim().split("\n");
  const checkTheirs = (
    JSON.parse(await run(skopeo, ["list-tags", ...skopeoArgs, `docker://${host}/many`])) as {
      Tags: string[];
    }
  ).Tags;
  if (checkOurs.length !== TAG_COUNT || checkTheirs.length !== TAG_COUNT) {
    throw new Error(`tag counts differ: regscan ${checkOurs.length}, skopeo ${checkTheirs.length}`);
  }

  const version = builtCli(["--version"]);
  const startup: number[] = [];
  const tagsLibrary: number[] = [];
  const tagsOurs: number[] = [];
  const tagsTheirs: number[] = [];
  const inspectOurs: number[] = [];
  const inspectTheirs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    tagsOurs.push(await timed(() => run(cli.command, cli.args)));
    // What the CLI costs before it sends anything (Node and module loading), to read the
    // tags ratio net of start-up; and the same listing through the library in-process.
    startup.push(await timed(() => run(version.command, version.args)));
    tagsLibrary.push(
      await timed(async () => {
        const factory = new RemoteClientFactory({ insecureHosts: [host] });
        try {
          const got = await factory
            .clientFor(parseImageName(`${host}/many`), Credentials.none())
            .tags();
          if (got.length !== TAG_COUNT) throw new Error(`library listed ${got.length} tags`);
        } finally {
          await factory.close();
        }
      }),
    );
    tagsTheirs.push(
      await timed(() => run(skopeo, ["list-tags", ...skopeoArgs, `docker://${host}/many`])),
    );

    inspectOurs.push(
      await timed(async () => {
        const factory = new RemoteClientFactory({ insecureHosts: [host] });
        try {
          const client = factory.clientFor(parseImageName(`${host}/images`), Credentials.none());
          const q = new PQueue({ concurrency: LIBRARY_CONCURRENCY });
          const entries = await Promise.all(
            inspectTags.map((t) => q.add(() => client.manifest(t))),
          );
          if (entries.some((e) => e?.info === undefined))
            throw new Error("an image was not described");
        } finally {
          await factory.close();
        }
      }),
    );
    inspectTheirs.push(
      await timed(async () => {
        const q = new PQueue({ concurrency: SKOPEO_CONCURRENCY });
        await Promise.all(
          inspectTags.map((t) =>
            q.add(() => run(skopeo, ["inspect", ...skopeoArgs, `docker://${host}/images:${t}`])),
          ),
        );
      }),
    );
  }
  await reg.stop();

  const result = {
    date: new Date().toISOString(),
    rounds: ROUNDS,
    tags: {
      tagCount: TAG_COUNT,
      regscanMs: median(tagsOurs),
      skopeoMs: median(tagsTheirs),
      ratio: median(tagsOurs) / median(tagsTheirs),
      cliStartupMs: median(startup),
      regscanLibraryMs: median(tagsLibrary),
      libraryRatio: median(tagsLibrary) / median(tagsTheirs),
      samples: { regscan: tagsOurs, skopeo: tagsTheirs, cliStartup: startup, library: tagsLibrary },
    },
    inspect: {
      images: INSPECT_COUNT,
      libraryConcurrency: LIBRARY_CONCURRENCY,
      // The default limiter (Flux's 200 rps, burst 125) paces the ~400 requests.
      rateLimit: { rps: 200, burst: 125 },
      skopeoConcurrency: SKOPEO_CONCURRENCY,
      regscanMs: median(inspectOurs),
      skopeoMs: median(inspectTheirs),
      ratio: median(inspectOurs) / median(inspectTheirs),
      samples: { regscan: inspectOurs, skopeo: inspectTheirs },
    },
  };
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/client.json", `${JSON.stringify(result, null, 2)}\n`);
  const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
  console.log(
    `tags (${TAG_COUNT}): regscan CLI ${fmt(result.tags.regscanMs)} (of which start-up ${fmt(result.tags.cliStartupMs)}), skopeo ${fmt(result.tags.skopeoMs)}, ratio ${result.tags.ratio.toFixed(2)}; library in-process ${fmt(result.tags.regscanLibraryMs)}, ratio ${result.tags.libraryRatio.toFixed(2)} (ratio = regscan / skopeo, lower is better)`,
  );
  console.log(
    `inspect (${INSPECT_COUNT} tags): regscan library ${fmt(result.inspect.regscanMs)}, skopeo ${fmt(result.inspect.skopeoMs)} (${SKOPEO_CONCURRENCY} at a time), ratio ${result.inspect.ratio.toFixed(3)}`,
  );
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());

/**
 * The installed entry point, as users run it (bin/regscan.mjs over dist/, which `npm run
 * bench` builds first), not the tsx-compiled source the tests use.
 */
function builtCli(args: string[]): { command: string; args: string[] } {
  const bin = fileURLToPath(new URL("../bin/regscan.mjs", import.meta.url));
  if (!existsSync(fileURLToPath(new URL("../dist/cli/main.js", import.meta.url)))) {
    throw new Error("dist/ is missing: run `npm run build` (npm run bench does it first)");
  }
  return { command: process.execPath, args: [bin, ...args] };
}
