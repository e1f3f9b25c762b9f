/**
 * The shipped deployment files run with the settings they show: `regscan config check` on the
 * ConfigMap, with the container image's environment and the Deployment's environment and
 * arguments, gives the shared memcached store and the listen address, whatever namespace
 * kustomize puts it in; nothing in the image or the systemd unit overrides a file's settings;
 * and the image, the unit and bench:scale's replicas run Node with the same memory settings.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import {
  REPLICA_COMMAND_LINE_FLAGS,
  REPLICA_MALLOC_ENV,
  REPLICA_NODE_OPTIONS,
} from "../../bench/scale/processes.js";
import { main } from "../../src/cli/main.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** `ENV` settings of the Dockerfile's last stage (the image that runs). */
async function imageEnvironment(): Promise<Record<string, string>> {
  const text = (await readFile(join(ROOT, "Dockerfile"), "utf8")).replace(/\\\n/g, " ");
  const lines = text.split("\n");
  const lastFrom = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  const env: Record<string, string> = {};
  for (const line of lines.slice(lastFrom)) {
    const m = /^ENV\s+(.*)$/i.exec(line.trim());
    if (!m?.[1]) continue;
    for (const pair of m[1].trim().split(/\s+/)) {
      const eq = pair.indexOf("=");
      assert.ok(eq > 0, `ENV in the KEY=VALUE form: ${pair}`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { optional?: boolean };
  };
}
interface Container {
  name: string;
  image: string;
  args: string[];
  env: EnvVar[];
}

async function manifests(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(ROOT, "deploy", file), "utf8");
  return parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
}

async function regscanContainer(): Promise<Container> {
  const [deployment] = await manifests("deployment.yaml");
  const spec = deployment as { spec: { template: { spec: { containers: Container[] } } } };
  const container = spec.spec.template.spec.containers.find((c) => c.name === "regscan");
  assert.ok(container, "deployment.yaml has the regscan container");
  return container;
}

/**
 * The container's environment as the kubelet builds it: the image's, then the manifest's in
 * order, fieldRefs filled in, `$(VAR)` references to earlier variables expanded, optional
 * Secrets absent.
 */
function containerEnvironment(
  image: Record<string, string>,
  vars: EnvVar[],
  pod: { namespace: string; name: string },
): Record<string, string> {
  const env = { ...image };
  for (const v of vars) {
    if (v.value !== undefined) {
      env[v.name] = v.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) =>
        env[name] !== undefined ? env[name] : whole,
      );
    } else if (v.valueFrom?.fieldRef) {
      const path = v.valueFrom.fieldRef.fieldPath;
      assert.ok(path === "metadata.namespace" || path === "metadata.name", path);
      env[v.name] = path === "metadata.namespace" ? pod.namespace : pod.name;
    } else {
      assert.equal(v.valueFrom?.secretKeyRef?.optional, true, `${v.name} needs a cluster`);
    }
  }
  return env;
}

async function configCheck(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(chunk, _e, done) {
        append(String(chunk));
        done();
      },
    });
  const ctx = {
    stdout: sink((s) => {
      stdout += s;
    }),
    stderr: sink((s) => {
      stderr += s;
    }),
    env,
    exitCode: 0,
  };
  const code = await main(["node", "regscan", "config", "check", ...args], ctx);
  return { code, stdout, stderr };
}

describe("shipped deployment files", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "regscan-deploy-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("the image sets no REGSCAN_* variable (it would override every configuration file)", async () => {
    const env = await imageEnvironment();
    assert.ok(Object.keys(env).length > 0, "the Dockerfile's ENV was read");
    assert.deepEqual(
      Object.keys(env).filter((k) => k.startsWith("REGSCAN_")),
      [],
    );
  });

  for (const namespace of ["regscan", "tools"]) {
    test(`config check of the ConfigMap with the image's and the Deployment's environment (namespace ${namespace}): shared memcached, listen 0.0.0.0:8080`, async () => {
      const [configMap] = await manifests("configmap.yaml");
      const data = (configMap as { data: Record<string, string> }).data["regscan.yaml"];
      assert.ok(data, "configmap.yaml has regscan.yaml");
      const file = join(dir, "regscan.yaml");
      await writeFile(file, data);

      const container = await regscanContainer();
      assert.equal(container.args[0], "serve");
      // The ConfigMap is mounted at /etc/regscan; here it is in a temporary directory.
      const args = container.args
        .slice(1)
        .map((a) => (a === "/etc/regscan/regscan.yaml" ? file : a));
      assert.ok(args.includes(file), "the Deployment runs serve with the ConfigMap's file");
      const env = containerEnvironment(await imageEnvironment(), container.env, {
        namespace,
        name: "regscan-7d9f-abcde",
      });

      const out = await configCheck(args, env);
      assert.equal(out.code, 0, out.stderr);
      const effective = parseYaml(out.stdout.replace(/^#.*\n/, "")) as Record<string, unknown>;
      assert.equal(effective.cache, `memcached+srv://memcached.${namespace}.svc.cluster.local`);
      assert.equal(effective.listen, "0.0.0.0:8080");
      assert.equal(effective.replicaId, "regscan-7d9f-abcde");
    });
  }

  test("the memcached Service is the one REGSCAN_CACHE names: headless, port named memcached", async () => {
    const docs = await manifests("memcached.yaml");
    const service = docs.find((d) => d.kind === "Service") as {
      metadata: { name: string };
      spec: { clusterIP: string; ports: { name: string }[] };
    };
    assert.equal(service.metadata.name, "memcached");
    assert.equal(service.spec.clusterIP, "None");
    assert.deepEqual(
      service.spec.ports.map((p) => p.name),
      ["memcached"],
    );
  });

  test("the image's own configuration (docker run): listen 0.0.0.0:8080, no store set", async () => {
    const out = await configCheck(
      ["--config", join(ROOT, "deploy/image/regscan.yaml")],
      await imageEnvironment(),
    );
    assert.equal(out.code, 0, out.stderr);
    const effective = parseYaml(out.stdout.replace(/^#.*\n/, "")) as Record<string, unknown>;
    assert.equal(effective.listen, "0.0.0.0:8080");
    assert.ok(!String(effective.cache ?? "").startsWith("memcached"));
  });

  test("the image the Deployment runs is the one `npm run image` builds", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
      version: string;
      scripts: Record<string, string>;
    };
    const container = await regscanContainer();
    assert.equal(container.image, `ghcr.io/regscan/regscan:${pkg.version}`);
    assert.match(pkg.scripts.image ?? "", /build-image\.sh/);
    const script = await readFile(join(ROOT, "scripts/build-image.sh"), "utf8");
    assert.match(script, /ghcr\.io\/regscan\/regscan:\$\{version\}/);
  });

  test("every base image of the Dockerfile is pinned by digest, on a current Node.js LTS", async () => {
    const text = await readFile(join(ROOT, "Dockerfile"), "utf8");
    const base = /^ARG NODE_IMAGE=(.*)$/m.exec(text)?.[1];
    assert.match(
      base ?? "",
      /^docker\.io\/library\/node:(22|24)-bookworm-slim@sha256:[0-9a-f]{64}$/,
    );
    const froms = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    assert.ok(froms.length >= 2);
    for (const from of froms) assert.equal(from, `\${NODE_IMAGE}`);
  });

  test("the image, the systemd unit and bench:scale run Node with the same heap, GC and malloc settings", async () => {
    const image = await readFile(join(ROOT, "Dockerfile"), "utf8");
    const unit = await readFile(join(ROOT, "examples/regscan.service"), "utf8");
    const bench = {
      node: REPLICA_NODE_OPTIONS.join(" "),
      commandLine: REPLICA_COMMAND_LINE_FLAGS.join(" "),
      malloc: REPLICA_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_,
    };
    const entrypoint = /^ENTRYPOINT \[(.*)\]$/m.exec(image)?.[1];
    assert.deepEqual(
      {
        node: /^\s*NODE_OPTIONS="([^"]*)"/m.exec(image)?.[1],
        // ["node", FLAGS..., "/app/bin/regscan.mjs"]
        commandLine: entrypoint
          ?.split(",")
          .map((a) => a.trim().replaceAll('"', ""))
          .slice(1, -1)
          .join(" "),
        malloc: /^\s*MALLOC_MMAP_THRESHOLD_=(\d+)/m.exec(image)?.[1],
      },
      bench,
      "Dockerfile",
    );
    assert.deepEqual(
      {
        node: /^Environment="NODE_OPTIONS=([^"]*)"$/m.exec(unit)?.[1],
        commandLine: /^ExecStart=\/usr\/bin\/env node (.*) \S+\/regscan serve /m.exec(unit)?.[1],
        malloc: /^Environment=MALLOC_MMAP_THRESHOLD_=(\d+)$/m.exec(unit)?.[1],
      },
      bench,
      "examples/regscan.service",
    );
  });

  test("the systemd unit passes no setting as a flag (it would override /etc/regscan/regscan.yaml)", async () => {
    const unit = await readFile(join(ROOT, "examples/regscan.service"), "utf8");
    const execs = unit.split("\n").filter((l) => /^Exec/.test(l));
    assert.ok(execs.length >= 2);
    for (const line of execs) {
      // Node's own flags come before the entry point; regscan's after it.
      const regscanArgs = line.slice(line.search(/\S*regscan\s/));
      const flags = regscanArgs.match(/\s--?[a-z][\w-]*/g) ?? [];
      assert.deepEqual(
        flags.map((f) => f.trim()).filter((f) => f !== "--config"),
        [],
        line,
      );
    }
    assert.doesNotMatch(unit, /^Environment=.*REGSCAN_/m);
  });
});
