/**
 * Proves the test harness: the real registry starts in every mode, the image builder's images
 * read back byte for byte over raw HTTP, auth is enforced as configured, and the recording
 * proxy, fault hook, pagination, TLS and cleanup do what other tests rely on.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Agent, fetch as undiciFetch } from "undici";
import { withFault } from "../support/faults.js";
import {
  ACCEPT_ALL_MANIFESTS,
  ImageBuilder,
  type PushedImage,
  type PushedIndex,
} from "../support/image-builder.js";
import { reapStaleTempDirs } from "../support/processes.js";
import { type RegistryHandle, readCa, startRegistry } from "../support/registry.js";
import { authHeaders, basicAuth, writeDockerConfig } from "../support/registry-auth.js";
import { skopeoInspectRaw, skopeoListTags } from "../support/skopeo.js";
import { waitFor } from "../support/wait-for.js";

const MODES = ["anonymous", "htpasswd", "token"] as const;

function basic(user: string, pass: string): string {
  return basicAuth(user, pass);
}

async function get(
  registry: RegistryHandle,
  repo: string,
  path: string,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${registry.url}${path}`, {
    headers: { ...(await authHeaders(registry, repo)), ...headers },
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

async function assertReadsBack(registry: RegistryHandle, img: PushedImage | PushedIndex) {
  for (const ref of [...img.tags, img.digest]) {
    const m = await get(registry, img.repo, `/v2/${img.repo}/manifests/${ref}`, {
      accept: ACCEPT_ALL_MANIFESTS,
    });
    assert.equal(m.status, 200, `manifest ${ref}`);
    assert.equal(m.headers.get("content-type"), img.mediaType);
    assert.equal(m.headers.get("docker-content-digest"), img.digest);
    assert.deepEqual(m.body, img.manifest);
  }
  const images = "images" in img ? img.images : [img];
  for (const image of images) {
    const c = await get(registry, image.repo, `/v2/${image.repo}/blobs/${image.config.digest}`);
    assert.equal(c.status, 200);
    assert.deepEqual(c.body, image.config.bytes);
    const config = JSON.parse(c.body.toString("utf8")) as {
      created: string;
      architecture: string;
      os: string;
      variant?: string;
      config: { Labels: Record<string, string> };
    };
    assert.equal(config.created, image.created);
    assert.equal(config.architecture, image.platform.architecture);
    assert.equal(config.os, image.platform.os);
    assert.equal(config.variant, image.platform.variant);
    assert.equal(config.config.Labels["org.opencontainers.image.created"], image.created);
    assert.equal(config.config.Labels["org.label-schema.build-date"], image.created);
  }
}

for (const mode of MODES) {
  describe(`registry in ${mode} mode`, () => {
    let registry: RegistryHandle;
    let builder: ImageBuilder;
    before(async () => {
      registry = await startRegistry({ mode });
      builder = new ImageBuilder(registry);
    });
    after(async () => {
      await builder.close();
      await registry.stop();
    });

    test("pushes every kind of image and reads each back over raw HTTP", async () => {
      const repo = "team/app";
      const pushed = [
        await builder.pushImage(repo, ["docker", "latest"], { created: "2023-01-02T03:04:05Z" }),
        await builder.pushImage(repo, "oci", { format: "oci", created: "2023-02-03T04:05:06Z" }),
        await builder.pushIndex(repo, "index"),
        await builder.pushIndex(repo, "list", { format: "docker" }),
      ];
      const list = await get(registry, repo, `/v2/${repo}/tags/list`);
      assert.equal(list.status, 200);
      const tags = (JSON.parse(list.body.toString("utf8")) as { tags: string[] }).tags;
      assert.deepEqual([...tags].sort(), ["docker", "index", "latest", "list", "oci"]);
      for (const p of pushed) await assertReadsBack(registry, p);
      assert.deepEqual([...(await skopeoListTags(registry, repo))].sort(), [...tags].sort());
      assert.deepEqual(await skopeoInspectRaw(registry, `${repo}:index`), pushed[2]?.manifest);
      const config = JSON.parse(readFileSync(writeDockerConfig(registry), "utf8")) as {
        auths: Record<string, { auth: string }>;
      };
      assert.deepEqual(Object.keys(config.auths), mode === "anonymous" ? [] : [registry.host]);

      const index = pushed[2] as PushedIndex;
      assert.deepEqual(
        index.images.map((i) => i.platform),
        [
          { os: "linux", architecture: "amd64" },
          { os: "linux", architecture: "arm64", variant: "v8" },
          { os: "linux", architecture: "arm", variant: "v7" },
        ],
      );
      assert.equal(index.image("linux/arm/v7").config.json.variant, "v7");
    });

    test("the recording proxy counts what the registry received", async () => {
      await builder.pushImage("counted", "v1");
      registry.resetRequests();
      const auth = await authHeaders(registry, "counted");
      const res = await fetch(`${registry.url}/v2/counted/manifests/v1`, {
        method: "HEAD",
        headers: { ...auth, accept: ACCEPT_ALL_MANIFESTS },
      });
      assert.equal(res.status, 200);
      const seen = registry.requests();
      assert.equal(seen.length, 1);
      assert.equal(seen[0]?.method, "HEAD");
      assert.equal(seen[0]?.path, "/v2/counted/manifests/v1");
      assert.equal(seen[0]?.status, 200);
      assert.equal(seen[0]?.hasAuthorization, mode !== "anonymous");
    });

    if (mode === "htpasswd") {
      test("a wrong password gets 401 with a Basic challenge", async () => {
        const [user] = Object.keys(registry.users);
        const res = await fetch(`${registry.url}/v2/`, {
          headers: { authorization: basic(user ?? "", "not-the-password") },
        });
        assert.equal(res.status, 401);
        assert.match(res.headers.get("www-authenticate") ?? "", /^Basic realm=/);
        const anon = await fetch(`${registry.url}/v2/`);
        assert.equal(anon.status, 401);
      });
    }

    if (mode === "token") {
      test("unauthenticated gets 401 with a Bearer challenge; a token is accepted", async () => {
        const ts = registry.tokenServer;
        assert.ok(ts);
        await builder.pushImage("secret/app", "v1");
        const ping = await fetch(`${registry.url}/v2/`);
        assert.equal(ping.status, 401);
        const challenge = ping.headers.get("www-authenticate") ?? "";
        assert.match(challenge, /^Bearer /);
        assert.ok(challenge.includes(`realm="${ts.realm}"`), challenge);
        assert.ok(challenge.includes(`service="${registry.service}"`), challenge);
        const anon = await fetch(`${registry.url}/v2/secret/app/tags/list`);
        assert.equal(anon.status, 401);

        ts.resetRequests();
        const auth = await authHeaders(registry, "secret/app");
        const res = await fetch(`${registry.url}/v2/secret/app/tags/list`, { headers: auth });
        assert.equal(res.status, 200);
        const [user] = Object.keys(registry.users);
        const tokenReq = ts.requests()[0];
        assert.equal(tokenReq?.username, user);
        assert.deepEqual(tokenReq?.scopes, ["repository:secret/app:pull"]);

        // An anonymous token grants nothing unless anonymousPull is set.
        const anonToken = (await (
          await fetch(`${ts.realm}?service=${registry.service}&scope=repository:secret/app:pull`)
        ).json()) as { token: string };
        const denied = await fetch(`${registry.url}/v2/secret/app/tags/list`, {
          headers: { authorization: `Bearer ${anonToken.token}` },
        });
        assert.equal(denied.status, 401);

        // A token for another audience is refused by the registry.
        const now = Math.floor(Date.now() / 1000);
        const foreign = ts.signToken({
          iss: ts.issuer,
          sub: user,
          aud: "some-other-service",
          exp: now + 60,
          nbf: now - 5,
          iat: now,
          jti: "x",
          access: [{ type: "repository", name: "secret/app", actions: ["pull"] }],
        });
        const refused = await fetch(`${registry.url}/v2/secret/app/tags/list`, {
          headers: { authorization: `Bearer ${foreign}` },
        });
        assert.equal(refused.status, 401);

        const wrong = await fetch(`${ts.realm}?service=${registry.service}`, {
          headers: { authorization: basic(user ?? "", "wrong") },
        });
        assert.equal(wrong.status, 401);
      });

      test("the OAuth2 POST form issues access and refresh tokens", async () => {
        const ts = registry.tokenServer;
        assert.ok(ts);
        const [user, pass] = Object.entries(registry.users)[0] ?? [];
        const form = new URLSearchParams({
          grant_type: "password",
          username: user ?? "",
          password: pass ?? "",
          service: registry.service ?? "",
          scope: "repository:secret/app:pull",
          client_id: "regscan-test",
          access_type: "offline",
        });
        const res = await fetch(ts.realm, { method: "POST", body: form });
        assert.equal(res.status, 200);
        const body = (await res.json()) as { access_token: string; refresh_token: string };
        const ok = await fetch(`${registry.url}/v2/secret/app/tags/list`, {
          headers: { authorization: `Bearer ${body.access_token}` },
        });
        assert.equal(ok.status, 200);
        const refreshed = await fetch(ts.realm, {
          method: "POST",
          body: new URLSearchParams({
            grant_type: "refresh_token",
            refresh_token: body.refresh_token,
            service: registry.service ?? "",
            scope: "repository:secret/app:pull",
            client_id: "regscan-test",
          }),
        });
        assert.equal(refreshed.status, 200);
        const again = (await refreshed.json()) as { access_token: string };
        const ok2 = await fetch(`${registry.url}/v2/secret/app/tags/list`, {
          headers: { authorization: `Bearer ${again.access_token}` },
        });
        assert.equal(ok2.status, 200);
      });
    }
  });
}

describe("harness features", () => {
  let registry: RegistryHandle;
  let builder: ImageBuilder;
  before(async () => {
    registry = await startRegistry();
    builder = new ImageBuilder(registry);
  });
  after(async () => {
    await builder.close();
    await registry.stop();
  });

  test("5,000 tags sharing one manifest are made well under 30 s and all listed", async () => {
    const image = await builder.pushImage("big/repo", "base");
    const tags = Array.from({ length: 5000 }, (_, i) => `v${i}`);
    const started = Date.now();
    await builder.tagMany("big/repo", { tags, manifest: image });
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 20_000, `tagMany took ${elapsed} ms`);
    const res = await fetch(`${registry.url}/v2/big/repo/tags/list`);
    const listed = ((await res.json()) as { tags: string[] }).tags;
    assert.equal(listed.length, 5001);
    assert.deepEqual(new Set(listed), new Set([...tags, "base"]));
    const m = await fetch(`${registry.url}/v2/big/repo/manifests/v4999`, {
      method: "HEAD",
      headers: { accept: ACCEPT_ALL_MANIFESTS },
    });
    assert.equal(m.headers.get("docker-content-digest"), image.digest);

    await builder.deleteTag("big/repo", "v0");
    const other = await builder.pushImage("big/repo", undefined);
    await builder.moveTag("big/repo", "v1", other);
    const after = (
      (await (await fetch(`${registry.url}/v2/big/repo/tags/list`)).json()) as {
        tags: string[];
      }
    ).tags;
    assert.equal(after.length, 5000);
    assert.ok(!after.includes("v0"));
    const moved = await fetch(`${registry.url}/v2/big/repo/manifests/v1`, {
      method: "HEAD",
      headers: { accept: ACCEPT_ALL_MANIFESTS },
    });
    assert.equal(moved.headers.get("docker-content-digest"), other.digest);
  });

  test("tagMany over the API (through the proxy) gives the same result", async () => {
    const proxied = new ImageBuilder(registry, { viaProxy: true });
    registry.resetRequests();
    const image = await proxied.pushImage("api/repo", undefined);
    assert.ok(registry.requests().some((r) => r.method === "PUT" && r.status === 201));
    await proxied.close();
    await builder.tagMany("api/repo", { tags: ["a", "b", "c"], manifest: image, via: "api" });
    const listed = (
      (await (await fetch(`${registry.url}/v2/api/repo/tags/list`)).json()) as {
        tags: string[];
      }
    ).tags;
    assert.deepEqual([...listed].sort(), ["a", "b", "c"]);
  });

  test("pagination mode pages tags/list with n, last and Link", async () => {
    const image = await builder.pushImage("paged", undefined);
    const tags = Array.from({ length: 25 }, (_, i) => `t${String(i).padStart(2, "0")}`);
    await builder.tagMany("paged", { tags, manifest: image });
    registry.setPagination({ defaultPageSize: 10 });
    try {
      registry.resetRequests();
      const seen: string[] = [];
      let next: string | undefined = "/v2/paged/tags/list";
      for (let page = 0; next !== undefined && page < 10; page++) {
        const res = await fetch(`${registry.url}${next}`);
        seen.push(...((await res.json()) as { tags: string[] }).tags);
        const link = res.headers.get("link");
        next = link === null ? undefined : /<([^>]+)>;\s*rel="next"/.exec(link)?.[1];
      }
      assert.deepEqual(seen, tags);
      assert.equal(registry.requests().length, 3);
      const small = await fetch(`${registry.url}/v2/paged/tags/list?n=5&last=t20`);
      assert.deepEqual(((await small.json()) as { tags: string[] }).tags, [
        "t21",
        "t22",
        "t23",
        "t24",
      ]);
      assert.equal(small.headers.get("link"), null);
      const head = await fetch(`${registry.url}/v2/paged/tags/list?n=5`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.match(head.headers.get("link") ?? "", /last=t04>; rel="next"$/);
    } finally {
      registry.setPagination(false);
    }
  });

  test("the fault hook answers instead of the registry", async () => {
    let calls = 0;
    await withFault(
      registry,
      (req) => {
        if (!req.path.endsWith("/tags/list")) return undefined;
        calls++;
        return calls === 1
          ? {
              status: 429,
              headers: { "retry-after": "1" },
              body: { errors: [{ code: "TOOMANYREQUESTS" }] },
            }
          : undefined;
      },
      async () => {
        registry.resetRequests();
        const first = await fetch(`${registry.url}/v2/paged/tags/list`);
        assert.equal(first.status, 429);
        assert.equal(first.headers.get("retry-after"), "1");
        await first.arrayBuffer();
        const second = await fetch(`${registry.url}/v2/paged/tags/list`);
        assert.equal(second.status, 200);
        await second.arrayBuffer();
        assert.deepEqual(
          registry.requests().map((r) => [r.status, r.injected]),
          [
            [429, true],
            [200, false],
          ],
        );
      },
    );
  });
});

test("a TLS registry is trusted with its CA only", async () => {
  const registry = await startRegistry({ tls: true });
  const builder = new ImageBuilder(registry);
  try {
    assert.ok(registry.url.startsWith("https://"));
    assert.ok(registry.caFile !== undefined && existsSync(registry.caFile));
    const image = await builder.pushImage("tls/app", "v1");
    const trusted = new Agent({ connect: { ca: readCa(registry) } });
    const res = await undiciFetch(`${registry.url}/v2/tls/app/manifests/v1`, {
      headers: { accept: ACCEPT_ALL_MANIFESTS },
      dispatcher: trusted,
    });
    assert.equal(res.headers.get("docker-content-digest"), image.digest);
    await res.arrayBuffer();
    await trusted.close();
    registry.resetRequests();
    const before = registry.connections();
    await assert.rejects(fetch(`http://${registry.host}/v2/`));
    assert.equal(registry.connections().failed, before.failed + 1);
    assert.equal(registry.requests().length, 0);
    await assert.rejects(fetch(`${registry.url}/v2/`), (err: Error) => {
      const cause = err.cause as { code?: string } | undefined;
      assert.match(String(cause?.code), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
      return true;
    });
  } finally {
    await builder.close();
    await registry.stop();
  }
});

test("processes and temp dirs are gone after the test process dies of an error", async () => {
  const registryModule = fileURLToPath(new URL("../support/registry.ts", import.meta.url));
  const script = [
    `import { startRegistry } from ${JSON.stringify(registryModule)};`,
    "const r = await startRegistry({ mode: 'token' });",
    "const { execFileSync } = await import('node:child_process');",
    "const pids = execFileSync('pgrep', ['-P', String(process.pid)], { encoding: 'utf8' });",
    "console.log(JSON.stringify({ dir: r.storageDir, pids: pids.trim().split('\\n') }));",
    "throw new Error('deliberate failure');",
  ].join("\n");
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "pipe"],
    // Without this the child would think it runs under the test runner and report to it.
    env: { ...process.env, NODE_TEST_CONTEXT: undefined },
  });
  let out = "";
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(code, 1, err);
  assert.match(err, /deliberate failure/);
  const { dir, pids } = JSON.parse(out.trim()) as { dir: string; pids: string[] };
  assert.ok(pids.length >= 1);
  assert.equal(existsSync(dir), false, "storage dir removed");
  for (const pid of pids) {
    await waitFor(() => !existsSync(`/proc/${pid}`) || isZombie(pid), {
      what: `child ${pid} to stop running`,
      timeoutMs: 2000,
    });
  }
});

test("a test process killed with SIGKILL leaves no server running, and its dirs are reaped", async () => {
  const registryModule = fileURLToPath(new URL("../support/registry.ts", import.meta.url));
  const script = [
    `import { startRegistry } from ${JSON.stringify(registryModule)};`,
    "const r = await startRegistry({ mode: 'htpasswd', tls: true });",
    "const { execFileSync } = await import('node:child_process');",
    "const pids = execFileSync('pgrep', ['-P', String(process.pid)], { encoding: 'utf8' });",
    "console.log(JSON.stringify({ dir: r.storageDir, pids: pids.trim().split('\\n') }));",
    "setInterval(() => {}, 1000);",
  ].join("\n");
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, NODE_TEST_CONTEXT: undefined },
  });
  let out = "";
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("child did not start a registry")), 20_000);
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(out);
      }
    });
  });
  const { dir, pids } = JSON.parse(line.trim()) as { dir: string; pids: string[] };
  child.kill("SIGKILL");
  await new Promise((resolve) => child.on("close", resolve));
  for (const pid of pids) {
    await waitFor(() => !existsSync(`/proc/${pid}`) || isZombie(pid), {
      what: `child ${pid} to stop running`,
      timeoutMs: 2000,
    });
  }
  assert.equal(existsSync(dir), true, "a SIGKILLed process cannot clean up itself");
  reapStaleTempDirs();
  assert.equal(existsSync(dir), false, "the next test process reaps it");
});

function isZombie(pid: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return / Z /.test(stat.slice(stat.lastIndexOf(")")));
  } catch {
    return true;
  }
}
