/**
 * `regscan serve` end to end: the real CLI process against the real registry and the real
 * embedded store (issue 5, acceptance 2 and 5; the command's smoke test), plus its startup
 * failures and `config check`. Apart from that smoke test and `config check`'s first run,
 * the CLI's `main` runs in this process.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fetchJson, serveArgs, serveUrl, startServe } from "../daemon/serve-process.js";
import { type CliResult, runCli, runCliInProcess, startCliInProcess } from "../support/cli.js";
import { ImageBuilder } from "../support/image-builder.js";
import { freePort } from "../support/ports.js";
import { cleanupAll, makeTempDir, onCleanup, waitFor } from "../support/processes.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";

after(cleanupAll);

/** Opens an event stream; resolves once the server says it is connected. */
function openEvents(
  url: string,
  headers: Record<string, string>,
): Promise<{ events: string[]; stop(): void }> {
  return new Promise((resolve, reject) => {
    const events: string[] = [];
    const req = request(url, { headers }, (res) => {
      let buffer = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        buffer += d;
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          events.push(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
        }
        if (events.some((e) => e.includes(": connected")))
          resolve({ events, stop: () => req.destroy() });
      });
    });
    req.on("error", reject);
    req.setTimeout(60_000, () => req.destroy());
    req.end();
  });
}

/** `regscan serve ...args` run through `main` in this process, as `startServe` runs the process. */
async function serveInProcess(args: string[]) {
  const run = startCliInProcess(serveArgs(args));
  let ended = false;
  void run.done.finally(() => {
    ended = true;
  });
  const stop = async (): Promise<CliResult> => {
    if (!ended) run.signal("SIGTERM");
    return run.done;
  };
  onCleanup(async () => {
    await stop();
  });
  const url = await serveUrl(run.stdout, () => (ended ? `it ended: ${run.output()}` : undefined));
  return {
    url,
    output: run.output,
    stop,
    fetchJson: (path: string) => fetchJson(url, path),
  };
}

describe("regscan serve", () => {
  let registry: RegistryHandle;
  let locked: RegistryHandle;
  let builder: ImageBuilder;
  let dir: string;

  before(async () => {
    dir = makeTempDir("regscan-serve-");
    [registry, locked] = await Promise.all([startRegistry(), startRegistry({ mode: "htpasswd" })]);
    builder = new ImageBuilder(registry);
    const lockedBuilder = new ImageBuilder(locked);
    await Promise.all([
      builder.pushImage("team/app", ["v1", "v2"], { labels: { "org.example.team": "blue" } }),
      builder.pushImage("team/other", ["latest"]),
      lockedBuilder.pushImage("team/secret", ["v1"]),
    ]);
    await lockedBuilder.close();
  });
  after(async () => {
    await builder?.close();
  });

  // The daemon process and the in-process one side by side: the second mostly waits out the
  // retries of its unreachable registry, and neither reads what the other changes (the first
  // pushes v3; the second asks only that team/app was scanned). The in-process runs below stay
  // one at a time: they share this process's signal listeners.
  describe("serving", { concurrency: true }, () => {
    test("repositories become ready, a pushed tag appears after a priority refresh with an event, metrics show it", async () => {
      const app = `${registry.host}/team/app`;
      const other = `${registry.host}/team/other`;
      const serve = await startServe([
        "--image",
        app,
        "--image",
        `${other}:latest`,
        "--insecure-host",
        registry.host,
        "--cache",
        `sqlite:${join(dir, "e2e.db")}`,
        "--api-token",
        "e2e-token-123",
      ]);
      const headers = { authorization: "Bearer e2e-token-123" };
      const auth = { headers };
      for (const name of [app, other]) {
        await waitFor(
          async () => (await serve.fetchJson(`/v1/repositories/${name}`, auth)).status === 200,
          {
            what: `${name} to be cached`,
            timeoutMs: 30_000,
            intervalMs: 50,
          },
        );
      }
      const repo = await serve.fetchJson(`/v1/repositories/${encodeURIComponent(app)}`, auth);
      assert.deepEqual((repo.body.tags as string[]).slice().sort(), ["v1", "v2"]);
      const images = repo.body.images as Record<
        string,
        { labels: Record<string, string>; digest: string }
      >;
      assert.equal(images.v1?.labels["org.example.team"], "blue");
      const image = await serve.fetchJson(`/v1/images/${app}:v2`, auth);
      assert.equal(image.status, 200);
      assert.equal(image.body.digest, images.v2?.digest);
      assert.equal((await serve.fetchJson("/v1/repositories")).status, 401);

      const list = await serve.fetchJson("/v1/repositories", auth);
      const statuses = list.body.repositories as Array<{ name: string; tagCount: number }>;
      assert.deepEqual(statuses.map((s) => s.name).sort(), [app, other].sort());
      assert.equal(statuses.find((s) => s.name === app)?.tagCount, 2);

      const stream = await openEvents(`${serve.url}/v1/events`, headers);
      const pushed = await builder.pushImage("team/app", ["v3"]);
      const refresh = await serve.fetchJson(`/v1/repositories/${app}/refresh`, {
        ...auth,
        method: "POST",
      });
      assert.equal(refresh.status, 202);
      await waitFor(
        async () => {
          const r = await serve.fetchJson(`/v1/repositories/${app}`, auth);
          return (r.body.tags as string[] | undefined)?.includes("v3") ?? false;
        },
        { what: "v3 to appear after the priority refresh", timeoutMs: 20_000, intervalMs: 50 },
      );
      await waitFor(async () => stream.events.some((e) => e.includes("event: new-tag")), {
        what: "a new-tag event",
        timeoutMs: 10_000,
      });
      stream.stop();
      const event = stream.events.find((e) => e.includes("event: new-tag")) ?? "";
      const data = JSON.parse(/data: (.*)/.exec(event)?.[1] ?? "{}") as Record<string, string>;
      assert.equal(data.repository, app);
      assert.equal(data.tag, "v3");
      assert.equal(data.digest, pushed.digest);

      const metrics = await fetch(`${serve.url}/metrics`);
      const text = await metrics.text();
      assert.equal(metrics.status, 200);
      assert.match(text, /regscan_warmer_repositories_scanned_total/);
      assert.match(text, /regscan_warmer_tags_refreshed_total/);
      assert.match(
        text,
        /regscan_client_fetch_duration_seconds_count\{kind="tags",success="true"\} [1-9]/,
      );
      assert.match(
        text,
        /regscan_http_requests_total\{host="127\.0\.0\.1:\d+",method="GET",status="200"\} [1-9]/,
      );
      assert.equal((await fetch(`${serve.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${serve.url}/readyz`)).status, 200);

      const stopped = await serve.stop("SIGTERM");
      assert.equal(stopped.code, 0, serve.output());
      assert.ok(!serve.output().includes("e2e-token-123"), "the API token must not be logged");
    });

    test("an unreachable registry, a bad credential and an unknown image are named; the rest is served", async () => {
      const closedPort = await freePort();
      const good = `${registry.host}/team/app`;
      const unreachable = `127.0.0.1:${closedPort}/team/gone`;
      const secret = `${locked.host}/team/secret`;
      const unknown = `${registry.host}/team/nonexistent`;
      const dockerConfig = join(dir, "config.json");
      const wrong = Buffer.from("alice:not-the-password").toString("base64");
      writeFileSync(dockerConfig, JSON.stringify({ auths: { [locked.host]: { auth: wrong } } }));
      const serve = await serveInProcess([
        ...[good, unreachable, secret, unknown].flatMap((i) => ["--image", i]),
        ...[registry.host, locked.host, `127.0.0.1:${closedPort}`].flatMap((h) => [
          "--insecure-host",
          h,
        ]),
        "--docker-config",
        dockerConfig,
        "--cache",
        "memory:",
      ]);
      type Status = {
        name: string;
        tagCount?: number;
        lastError?: { code: string; message: string };
      };
      let byName = new Map<string, Status>();
      await waitFor(
        async () => {
          const list = await serve.fetchJson("/v1/repositories");
          byName = new Map((list.body.repositories as Status[]).map((s) => [s.name, s]));
          return (
            byName.get(good)?.tagCount !== undefined &&
            [unreachable, secret, unknown].every((n) => byName.get(n)?.lastError !== undefined)
          );
        },
        { what: "every repository to be scanned once", timeoutMs: 45_000, intervalMs: 50 },
      );
      assert.equal(byName.get(good)?.lastError, undefined);
      assert.equal(byName.get(secret)?.lastError?.code, "UNAUTHORIZED");
      assert.equal(byName.get(unknown)?.lastError?.code, "NAME_UNKNOWN");
      assert.match(
        byName.get(unreachable)?.lastError?.message ?? "",
        new RegExp(`127\\.0\\.0\\.1:${closedPort}`),
      );

      const failed = await serve.fetchJson(`/v1/repositories/${secret}`);
      assert.equal(failed.status, 502);
      assert.equal(failed.body.code, "UNAUTHORIZED");
      const missing = await serve.fetchJson(`/v1/repositories/${unknown}`);
      assert.equal(missing.status, 502);
      assert.equal(missing.body.code, "NAME_UNKNOWN");
      assert.equal((await serve.fetchJson(`/v1/repositories/${good}`)).status, 200);
      assert.equal(
        (await serve.fetchJson(`/v1/repositories/${registry.host}/team/other`)).status,
        404,
      );
      const out = serve.output();
      assert.ok(!out.includes("not-the-password") && !out.includes(wrong), "no secret in the logs");
      assert.equal((await serve.stop()).code, 0);
    });
  });

  test("without images it says how to give some and exits 1", async () => {
    const r = await runCliInProcess(["serve", "--listen", "127.0.0.1:0"], {
      env: { REGSCAN_IMAGES: "" },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no images to watch/);
    assert.match(r.stderr, /--image/);
  });

  test("a malformed configuration file is named with the path and expectation, exit 1", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      "listen: 127.0.0.1:0\nrepositories:\n  - name: alpine\n    interval: sometimes\n",
    );
    const r = await runCliInProcess(["serve", "--config", file]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `${file.replace(/[.]/g, "\\.")}:4: at repositories\\[0\\]\\.interval: expected a duration`,
      ),
    );
    assert.ok(!r.stderr.includes("    at "), "no stack trace");
  });

  test("an invalid image name in the configuration is named", async () => {
    const file = join(dir, "bad-image.yaml");
    writeFileSync(file, "repositories:\n  - Not/A/Valid:Ref:Name\n");
    const r = await runCliInProcess(["serve", "--config", file, "--listen", "127.0.0.1:0"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /repositories\[0\]\.name/);
  });

  test("config check prints the effective configuration with secrets masked", async () => {
    const file = join(dir, "good.yaml");
    writeFileSync(
      file,
      "apiToken: very-secret-token\ncache: redis://:redis-pw@127.0.0.1:6379\nrepositories: [alpine]\n",
    );
    // The real process: the smoke test of `config check`.
    const r = await runCli(["config", "check", file], { env: { REGSCAN_RPS: "7" } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /apiToken: "?\*{8}"?/);
    assert.match(r.stdout, /rps: 7/);
    assert.match(r.stdout, /name: alpine/);
    assert.ok(!r.stdout.includes("very-secret-token") && !r.stdout.includes("redis-pw"));
    // The flags `serve` takes apply too, over the environment and the file.
    const flagged = await runCliInProcess(
      ["config", "check", file, "--rps", "9", "--api-token", "flag-secret-token"],
      { env: { REGSCAN_RPS: "7" } },
    );
    assert.equal(flagged.code, 0, flagged.stderr);
    assert.match(flagged.stdout, /rps: 9/);
    assert.ok(!flagged.stdout.includes("flag-secret-token"));
    const bad = await runCliInProcess(["config", "check", join(dir, "bad.yaml")]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /interval: expected a duration/);
    const pattern = join(dir, "bad-pattern.yaml");
    writeFileSync(pattern, "repositories:\n  - name: alpine\n    tags:\n      exclude: ['/(/']\n");
    const badPattern = await runCliInProcess(["config", "check", pattern]);
    assert.equal(badPattern.code, 1);
    assert.ok(
      badPattern.stderr.includes(
        `${pattern}:4: at repositories[0].tags.exclude[0]: invalid tag filter`,
      ),
      badPattern.stderr,
    );
  });

  test("a listen address in use is a clear error", async () => {
    const port = await freePort();
    const blocker = createServer().listen(port, "127.0.0.1");
    await new Promise((r) => blocker.once("listening", r));
    try {
      const r = await runCliInProcess([
        "serve",
        "--image",
        "alpine",
        "--cache",
        "memory:",
        "--listen",
        `127.0.0.1:${port}`,
      ]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`),
      );
    } finally {
      blocker.close();
    }
  });
});
