/**
 * The package as users get it: `npm pack` of the built dist/, unpacked into a new project's
 * node_modules/regscan beside its dependencies without the optional ones (the cloud SDKs and
 * the Kubernetes client; their absence also proves that no public declaration needs their
 * types). Its import runs from ESM and its require() from CommonJS; the README's library
 * examples type-check with `skipLibCheck: false` under `moduleResolution` nodenext and
 * bundler; a CommonJS TypeScript project compiles and runs; a feature whose optional package
 * is missing says which package to install.
 *
 * The dependencies are links to this checkout's installed packages, one per name in the
 * packed package.json's `dependencies` and nothing else, where `npm install` of the tarball
 * spent 4-5 s of CPU to put the same versions (the lockfile's, from the npm cache that `npm ci`
 * filled) in the same place: regscan's own modules resolve only what it declares (an
 * undeclared or optional package is missing, as after an install), and each dependency
 * resolves its own as installed.
 *
 * One install serves both module systems (a project without `"type"` is CommonJS, a
 * `.mjs` file or a directory whose package.json says `"type": "module"` is ESM, and Node
 * and TypeScript resolve the same `node_modules` for both), and one nodenext tsc program
 * checks the ESM examples and compiles the CommonJS project (module format is per file
 * under nodenext, and the package's declarations are checked once for both): the
 * declarations' check is nearly all of a run's time.
 */
import assert from "node:assert/strict";
import {
  access,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ensureDist } from "../support/built-dist.js";
import { ENTRY_LOAD_FILES, loadEntry, type RunResult, run } from "./support.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const HOOK_TIMEOUT = 600_000;

function ok(what: string, r: RunResult): RunResult {
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** `file(line,col): error TSnnnn` of a tsc run, as [file, code] pairs. */
function tscErrors(r: RunResult): string[][] {
  return [...r.stdout.matchAll(/^(\S+?)\(\d+,\d+\): error (TS\d+)/gm)].map((m) => [
    m[1] ?? "",
    m[2] ?? "",
  ]);
}

/** A tsconfig for a consumer project; Node's types come from this checkout. */
function tsconfig(
  resolution: "nodenext" | "bundler",
  include: string[],
  extra: Record<string, unknown> = {},
) {
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
    include,
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

/** Every subpath's declarations are checked too, not only the root's. */
const SUBPATHS_TS = `import type { Config, Daemon, ImageSource } from "regscan/daemon";
import { MemcachedStore } from "regscan/stores/memcached";
import { MemoryStore } from "regscan/stores/memory";
import { RedisStore } from "regscan/stores/redis";
import { defaultSqlitePath, SqliteStore } from "regscan/stores/sqlite";
export type Used = [Config, Daemon, ImageSource, MemcachedStore, RedisStore, SqliteStore];
export const store = new MemoryStore();
export const path: string = defaultSqlitePath();
`;

/** A mistake that the check must catch: it really reads regscan's types. */
const MISTAKE_TS = `import { parseImageRef } from "regscan";\nexport const n: number = parseImageRef("alpine");\n`;

/** The CommonJS TypeScript program: the optional packages' absence is named. */
const CJS_MAIN_TS = `import { CloudCredentialsError, getGCPOAuthToken, MissingDependencyError, parseImageRef } from "regscan";
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
`;

/** Writes the README's examples, the subpath imports and the mistake into an ESM directory. */
async function writeExamples(dir: string): Promise<void> {
  const examples = await readmeLibraryExamples();
  assert.ok(examples.length >= 3, "README has library examples");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module", private: true }));
  for (const [i, code] of examples.entries()) {
    await writeFile(join(dir, `example${i}.ts`), code);
  }
  await writeFile(join(dir, "subpaths.ts"), SUBPATHS_TS);
  await writeFile(join(dir, "mistake.ts"), MISTAKE_TS);
}

describe("the packed tarball, installed into a fresh project", () => {
  let work: string;
  let files: string[];
  /** The consumer project: CommonJS by default, with ESM files and directories in it. */
  let app: string;
  /** The nodenext program (ESM examples in esm/, CommonJS main.ts) and the bundler check. */
  let nodenext: Promise<RunResult>;
  let bundler: Promise<RunResult>;

  before(
    async () => {
      work = await mkdtemp(join(tmpdir(), "regscan-package-"));
      // The checkout's dist/, as `npm test` built it before the tests (scripts/build-dist.mjs:
      // `tsc --noCheck`, the type-check being npm test's own step; a module since removed
      // has its files deleted), rebuilt here if a source file is newer (the file run alone),
      // and copied: the pack reads a snapshot that no other run's build changes under it.
      ensureDist();
      const pkg = join(work, "pkg");
      await mkdir(pkg);
      for (const f of ["package.json", "README.md", "LICENSE"]) {
        await copyFile(join(ROOT, f), join(pkg, f));
      }
      await cp(join(ROOT, "bin"), join(pkg, "bin"), { recursive: true });
      await cp(join(ROOT, "dist"), join(pkg, "dist"), { recursive: true });
      const packed = ok(
        "npm pack",
        await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], {
          cwd: pkg,
        }),
      );
      const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
      assert.ok(info);
      const tarball = join(work, basename(info.filename));
      files = info.files.map((f) => f.path);

      app = join(work, "app");
      const installed = join(app, "node_modules", "regscan");
      await mkdir(installed, { recursive: true });
      // No "type": CommonJS, as most projects that require() a package are.
      await writeFile(
        join(app, "package.json"),
        JSON.stringify({ name: "consumer", private: true }),
      );
      // An npm tarball holds the package under package/.
      ok(
        "tar -x",
        await run("tar", ["-xzf", tarball, "-C", installed, "--strip-components=1"], {
          timeoutMs: 60_000,
        }),
      );
      const manifest = JSON.parse(await readFile(join(installed, "package.json"), "utf8")) as {
        dependencies?: Record<string, string>;
        optionalDependencies?: Record<string, string>;
      };
      const dependencies = Object.keys(manifest.dependencies ?? {});
      assert.ok(dependencies.length > 0, "the package declares its dependencies");
      for (const name of dependencies) {
        assert.ok(!(name in (manifest.optionalDependencies ?? {})), `${name} is not optional`);
        const target = join(ROOT, "node_modules", name);
        await access(join(target, "package.json"));
        const link = join(app, "node_modules", name);
        await mkdir(dirname(link), { recursive: true });
        await symlink(target, link, "dir");
      }

      const ts = join(app, "ts");
      await writeExamples(join(ts, "esm"));
      await writeFile(
        join(ts, "tsconfig.json"),
        tsconfig("nodenext", ["*.ts", "esm/*.ts"], { noEmit: false, outDir: "out", rootDir: "." }),
      );
      // ts/ has no package.json of its own: main.ts is CommonJS, as app/ is.
      await writeFile(join(ts, "main.ts"), CJS_MAIN_TS);
      const types = join(app, "types-bundler");
      await writeExamples(types);
      await writeFile(join(types, "tsconfig.json"), tsconfig("bundler", ["*.ts"]));
      // Both checks run while the tests below use the install; each test awaits its own.
      nodenext = run(process.execPath, [TSC, "-p", "."], { cwd: ts, timeoutMs: 300_000 });
      bundler = run(process.execPath, [TSC, "-p", "."], { cwd: types, timeoutMs: 300_000 });
      // Neither is awaited here: a rejection (spawn failure) is the awaiting test's.
      nodenext.catch(() => {});
      bundler.catch(() => {});
    },
    { timeout: HOOK_TIMEOUT },
  );

  after(async () => {
    // The checks may still run when a test failed early; they are awaited before the rm.
    await Promise.allSettled([nodenext, bundler].filter((p) => p !== undefined));
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
      join(app, "main.mjs"),
      `import { parseImageRef, openStore, MissingDependencyError } from "regscan";
import { Daemon, loadConfig } from "regscan/daemon";
import { MemoryStore } from "regscan/stores/memory";
import { RedisStore } from "regscan/stores/redis";
const store = await openStore("memory:");
await store.close();
console.log(JSON.stringify([parseImageRef("alpine:3.19").toString(), typeof Daemon, typeof loadConfig,
  typeof MemoryStore, typeof RedisStore, new MissingDependencyError({ packageName: "x", feature: "y" }).code]));
`,
    );
    const r = ok("node main.mjs", await run(process.execPath, ["main.mjs"], { cwd: app }));
    assert.deepEqual(JSON.parse(r.stdout), [
      "docker.io/library/alpine:3.19",
      "function",
      "function",
      "function",
      "function",
      "MISSING_DEPENDENCY",
    ]);
    for (const f of ENTRY_LOAD_FILES) await copyFile(f, join(app, basename(f)));
    const loaded = await loadEntry("regscan", {
      cwd: app,
      child: join(app, "entry-load-child.mjs"),
    });
    assert.ok(loaded.exports > 50);
    assert.deepEqual(loaded.afterImport, []);
  });

  test("CommonJS: require() of the root and the subpaths runs (no optional dependencies)", async () => {
    await writeFile(
      join(app, "main.cjs"),
      `const regscan = require("regscan");
const { KubernetesSource } = require("regscan/daemon");
const { SqliteStore, defaultSqlitePath } = require("regscan/stores/sqlite");
console.log(JSON.stringify([regscan.parseImageRef("alpine:3.19").familiar(), typeof KubernetesSource,
  typeof SqliteStore, typeof defaultSqlitePath, typeof regscan.Warmer]));
`,
    );
    const r = ok("node main.cjs", await run(process.execPath, ["main.cjs"], { cwd: app }));
    assert.deepEqual(JSON.parse(r.stdout), [
      "alpine:3.19",
      "function",
      "function",
      "function",
      "function",
    ]);
  });

  // The planted mistake is the only error of each run: every example and subpath file
  // type-checks, and the CommonJS program compiles (one tsc run proves both).
  test("the README's library examples type-check (moduleResolution nodenext, skipLibCheck false)", async () => {
    const r = await nodenext;
    assert.notEqual(r.code, 0);
    assert.deepEqual(tscErrors(r), [["esm/mistake.ts", "TS2322"]], r.stdout);
  });

  test("the README's library examples type-check (moduleResolution bundler, skipLibCheck false)", async () => {
    const r = await bundler;
    assert.notEqual(r.code, 0);
    assert.deepEqual(tscErrors(r), [["mistake.ts", "TS2322"]], r.stdout);
  });

  test("CommonJS TypeScript (module nodenext) compiles and runs; a missing optional package is named", async () => {
    const dir = join(app, "ts");
    const r = await nodenext;
    assert.deepEqual(
      tscErrors(r),
      [["esm/mistake.ts", "TS2322"]],
      `tsc:\n${r.stdout}\n${r.stderr}`,
    );
    const js = await readFile(join(dir, "out/main.js"), "utf8");
    assert.match(js, /require\("regscan"\)/, "compiled to CommonJS");
    const out = ok("node out/main.js", await run(process.execPath, ["out/main.js"], { cwd: dir }));
    assert.deepEqual(JSON.parse(out.stdout.trim().split("\n").at(-1) ?? "[]"), [
      "ghcr.io/org/app:v1",
      "MISSING_DEPENDENCY @kubernetes/client-node",
      "MISSING_DEPENDENCY google-auth-library",
    ]);
  });
});
