/**
 * The package as users get it: `npm pack` of a fresh build, installed into a new ESM project
 * and a new CommonJS project from the local npm cache, both without the optional dependencies
 * (the cloud SDKs and the Kubernetes client: nearly all of the install's time and size; their
 * absence also proves that no public declaration needs their types). Both run; the README's library examples type-check with `skipLibCheck: false`
 * under `moduleResolution` nodenext and bundler; a CommonJS TypeScript project compiles and
 * runs; a feature whose optional package is missing says which package to install.
 */
import assert from "node:assert/strict";
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ENTRY_LOAD_FILES, loadEntry, type RunResult, run } from "./support.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const NPM_INSTALL = ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"];
const HOOK_TIMEOUT = 600_000;

function ok(what: string, r: RunResult): RunResult {
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** A tsconfig for a consumer project; Node's types come from this checkout. */
function tsconfig(resolution: "nodenext" | "bundler", extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      lib: ["ES2023"],
      module: resolution === "nodenext" ? "NodeNext" : "ESNext",
      moduleResolution: resolution === "nodenext" ? "NodeNext" : "Bundler",
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      types: ["node"],
      typeRoots: [join(ROOT, "node_modules/@types")],
      ...extra,
    },
    include: ["*.ts"],
  });
}

/** The ```ts blocks of the README's Library section. */
async function readmeLibraryExamples(): Promise<string[]> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("\n## Library\n");
  assert.ok(start >= 0, "README has a Library section");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
}

describe("the packed tarball, installed into fresh projects", () => {
  let work: string;
  let tarball: string;
  let files: string[];
  let esm: string;
  let cjs: string;

  before(
    async () => {
      work = await mkdtemp(join(tmpdir(), "regscan-package-"));
      // A build of its own, not the checkout's dist/ (which other runs may be using, and
      // which may hold files of modules since removed).
      const pkg = join(work, "pkg");
      await mkdir(pkg);
      for (const f of ["package.json", "README.md", "LICENSE"]) {
        await copyFile(join(ROOT, f), join(pkg, f));
      }
      await cp(join(ROOT, "bin"), join(pkg, "bin"), { recursive: true });
      ok(
        "tsc build",
        await run(
          process.execPath,
          [TSC, "-p", join(ROOT, "tsconfig.build.json"), "--outDir", join(pkg, "dist")],
          { timeoutMs: 300_000 },
        ),
      );
      const packed = ok(
        "npm pack",
        await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], {
          cwd: pkg,
        }),
      );
      const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
      assert.ok(info);
      tarball = join(work, basename(info.filename));
      files = info.files.map((f) => f.path);

      esm = join(work, "esm");
      cjs = join(work, "cjs");
      await mkdir(esm);
      await mkdir(cjs);
      await writeFile(
        join(esm, "package.json"),
        JSON.stringify({ name: "esm-consumer", private: true, type: "module" }),
      );
      await writeFile(
        join(cjs, "package.json"),
        JSON.stringify({ name: "cjs-consumer", private: true }),
      );
      // --ignore-scripts: better-sqlite3 would compile from source; nothing here opens SQLite.
      ok(
        "npm install --omit=optional (ESM)",
        await run("npm", [...NPM_INSTALL, "--omit=optional", tarball], {
          cwd: esm,
          timeoutMs: 300_000,
        }),
      );
      ok(
        "npm install --omit=optional (CommonJS)",
        await run("npm", [...NPM_INSTALL, "--omit=optional", tarball], {
          cwd: cjs,
          timeoutMs: 300_000,
        }),
      );
    },
    { timeout: HOOK_TIMEOUT },
  );

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  test("the tarball has the LICENSE, every entry point and its types, and no source maps", () => {
    for (const f of [
      "LICENSE",
      "README.md",
      "package.json",
      "bin/regscan.mjs",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/exports/daemon.js",
      "dist/exports/daemon.d.ts",
      "dist/exports/stores/sqlite.js",
      "dist/exports/stores/redis.d.ts",
      "dist/cli/main.js",
    ]) {
      assert.ok(files.includes(f), `${f} is in the tarball`);
    }
    assert.deepEqual(
      files.filter((f) => f.endsWith(".map")),
      [],
    );
    assert.deepEqual(
      files.filter((f) => f.startsWith("src/") || f.startsWith("test/")),
      [],
    );
  });

  test("ESM: import of the root and the subpaths runs; the root loads no heavy dependency", async () => {
    await writeFile(
      join(esm, "main.mjs"),
      `import { parseImageRef, openStore, MissingDependencyError } from "regscan";
import { Daemon, loadConfig } from "regscan/daemon";
import { MemoryStore } from "regscan/stores/memory";
import { RedisStore } from "regscan/stores/redis";
const store = await openStore("memory:");
await store.close();
console.log(JSON.stringify([parseImageRef("alpine:3.19").toString(), typeof Daemon, typeof loadConfig,
  typeof MemoryStore, typeof RedisStore, new MissingDependencyError("x", "y").code]));
`,
    );
    const r = ok("node main.mjs", await run(process.execPath, ["main.mjs"], { cwd: esm }));
    assert.deepEqual(JSON.parse(r.stdout), [
      "docker.io/library/alpine:3.19",
      "function",
      "function",
      "function",
      "function",
      "MISSING_DEPENDENCY",
    ]);
    for (const f of ENTRY_LOAD_FILES) await copyFile(f, join(esm, basename(f)));
    const loaded = await loadEntry("regscan", {
      cwd: esm,
      child: join(esm, "entry-load-child.mjs"),
    });
    assert.ok(loaded.exports > 50);
    assert.deepEqual(loaded.afterImport, []);
  });

  for (const resolution of ["nodenext", "bundler"] as const) {
    test(`the README's library examples type-check (moduleResolution ${resolution}, skipLibCheck false)`, async () => {
      const examples = await readmeLibraryExamples();
      assert.ok(examples.length >= 3, "README has library examples");
      const dir = join(esm, `types-${resolution}`);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module", private: true }));
      await writeFile(join(dir, "tsconfig.json"), tsconfig(resolution));
      for (const [i, code] of examples.entries()) {
        await writeFile(join(dir, `example${i}.ts`), code);
      }
      // Every subpath's declarations are checked too, not only the root's.
      await writeFile(
        join(dir, "subpaths.ts"),
        `import type { Config, Daemon, ImageSource } from "regscan/daemon";
import { MemcachedStore } from "regscan/stores/memcached";
import { MemoryStore } from "regscan/stores/memory";
import { RedisStore } from "regscan/stores/redis";
import { defaultSqlitePath, SqliteStore } from "regscan/stores/sqlite";
export type Used = [Config, Daemon, ImageSource, MemcachedStore, RedisStore, SqliteStore];
export const store = new MemoryStore();
export const path: string = defaultSqlitePath();
`,
      );
      // A mistake is caught: the check really reads regscan's types.
      await writeFile(
        join(dir, "mistake.ts"),
        `import { parseImageRef } from "regscan";\nexport const n: number = parseImageRef("alpine");\n`,
      );
      const bad = await run(process.execPath, [TSC, "-p", "."], { cwd: dir, timeoutMs: 180_000 });
      assert.notEqual(bad.code, 0);
      assert.deepEqual(
        [...bad.stdout.matchAll(/^(\S+?)\(\d+,\d+\): error (TS\d+)/gm)].map((m) => [m[1], m[2]]),
        [["mistake.ts", "TS2322"]],
        bad.stdout,
      );
      // That mistake is the only error: every example and subpath file type-checks (one tsc
      // run proves both).
    });
  }

  test("CommonJS: require() of the root and the subpaths runs (no optional dependencies)", async () => {
    await writeFile(
      join(cjs, "main.cjs"),
      `const regscan = require("regscan");
const { KubernetesSource } = require("regscan/daemon");
const { SqliteStore, defaultSqlitePath } = require("regscan/stores/sqlite");
console.log(JSON.stringify([regscan.parseImageRef("alpine:3.19").familiar(), typeof KubernetesSource,
  typeof SqliteStore, typeof defaultSqlitePath, typeof regscan.Warmer]));
`,
    );
    const r = ok("node main.cjs", await run(process.execPath, ["main.cjs"], { cwd: cjs }));
    assert.deepEqual(JSON.parse(r.stdout), [
      "alpine:3.19",
      "function",
      "function",
      "function",
      "function",
    ]);
  });

  test("CommonJS TypeScript (module nodenext) compiles and runs; a missing optional package is named", async () => {
    const dir = join(cjs, "ts");
    await mkdir(dir);
    await writeFile(
      join(dir, "tsconfig.json"),
      tsconfig("nodenext", { noEmit: false, outDir: "out", rootDir: "." }),
    );
    await writeFile(
      join(dir, "main.ts"),
      `import { CloudCredentialsError, getGCPOAuthToken, MissingDependencyError, parseImageRef } from "regscan";
import { KubernetesSource } from "regscan/daemon";

async function main(): Promise<string[]> {
  const out = [parseImageRef("ghcr.io/org/app:v1").familiar()];
  const silent = () => {};
  const logger = { info: silent, warn: silent, error: silent, debug: silent, trace: silent };
  try {
    await new KubernetesSource({ logger: logger as never }).images();
    out.push("kubernetes: no error");
  } catch (err) {
    out.push(err instanceof MissingDependencyError ? \`\${err.code} \${err.packageName}\` : String(err));
  }
  try {
    await getGCPOAuthToken("gcr.io");
    out.push("gcp: no error");
  } catch (err) {
    const cause = err instanceof CloudCredentialsError ? err.cause : err;
    out.push(cause instanceof MissingDependencyError ? \`\${cause.code} \${cause.packageName}\` : String(err));
  }
  return out;
}
main().then((out) => console.log(JSON.stringify(out)));
`,
    );
    ok("tsc (CommonJS)", await run(process.execPath, [TSC, "-p", dir], { timeoutMs: 180_000 }));
    const js = await readFile(join(dir, "out/main.js"), "utf8");
    assert.match(js, /require\("regscan"\)/, "compiled to CommonJS");
    const r = ok("node out/main.js", await run(process.execPath, ["out/main.js"], { cwd: dir }));
    assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "[]"), [
      "ghcr.io/org/app:v1",
      "MISSING_DEPENDENCY @kubernetes/client-node",
      "MISSING_DEPENDENCY google-auth-library",
    ]);
  });
});
