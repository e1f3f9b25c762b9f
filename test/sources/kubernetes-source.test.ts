/**
 * The Kubernetes image source (issue 5, acceptance 6) against a local server that speaks the
 * Kubernetes list and read API for workloads, service accounts and secrets, reached through
 * a kubeconfig file the test writes, as a user would point regscan at a cluster.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { ImageFilter } from "../../src/sources/image-glob.js";
import { combineSources } from "../../src/sources/image-source.js";
import { KubernetesSource, KubernetesSourceError } from "../../src/sources/kubernetes-source.js";
import {
  dockercfg,
  dockerconfigjson,
  type FakeKubernetes,
  type KubeItem,
  podSpec,
  startFakeKubernetes,
} from "./fake-kubernetes.js";

const TOKEN = "k8s-bearer-7c1d";
const PASSWORD = "s3cret-pw-4411";

const WORKLOADS: Record<string, KubeItem[]> = {
  deployments: [
    {
      metadata: { name: "web", namespace: "apps" },
      spec: {
        template: {
          spec: podSpec(["registry.example.com:5000/team/web:1.2"], {
            imagePullSecrets: [{ name: "regcred" }],
          }),
        },
      },
    },
    {
      metadata: { name: "api", namespace: "apps" },
      spec: { template: { spec: podSpec([`ghcr.io/org/api@sha256:${"a".repeat(64)}`]) } },
    },
    {
      metadata: { name: "pause", namespace: "apps" },
      spec: { template: { spec: podSpec(["k8s.gcr.io/pause:3.9"]) } },
    },
  ],
  statefulsets: [
    {
      metadata: { name: "db", namespace: "apps" },
      spec: {
        template: { spec: podSpec(["quay.io/org/db:15"], { serviceAccountName: "builder" }) },
      },
    },
  ],
  daemonsets: [
    {
      metadata: { name: "agent", namespace: "other" },
      spec: { template: { spec: podSpec(["alpine:3.19"]) } },
    },
  ],
  cronjobs: [
    {
      metadata: { name: "nightly", namespace: "apps" },
      spec: { jobTemplate: { spec: { template: { spec: podSpec(["busybox"]) } } } },
    },
  ],
  jobs: [
    {
      metadata: { name: "migrate", namespace: "other" },
      spec: { template: { spec: podSpec(["ghcr.io/org/migrate:v1"]) } },
    },
  ],
  pods: [
    {
      metadata: { name: "debug", namespace: "apps" },
      spec: podSpec(["registry.example.com:5000/team/debug:x", "not a valid ref!"], {}, [
        "ghcr.io/org/init:1",
      ]),
    },
    {
      metadata: { name: "sys", namespace: "kube-system" },
      spec: podSpec(["ghcr.io/org/system:1"]),
    },
  ],
};

const SERVICE_ACCOUNTS: Record<string, unknown> = {
  "apps/default": { metadata: { name: "default", namespace: "apps" } },
  "apps/builder": {
    metadata: { name: "builder", namespace: "apps" },
    imagePullSecrets: [{ name: "sa-cred" }],
  },
  "other/default": { metadata: { name: "default", namespace: "other" } },
};

const SECRETS: Record<string, unknown> = {
  "apps/regcred": {
    metadata: { name: "regcred", namespace: "apps" },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": dockerconfigjson("registry.example.com:5000", "alice", PASSWORD) },
  },
  "apps/sa-cred": {
    metadata: { name: "sa-cred", namespace: "apps" },
    type: "kubernetes.io/dockercfg",
    data: { ".dockercfg": dockercfg("https://quay.io", "robot", PASSWORD) },
  },
};

describe("KubernetesSource", () => {
  let fake: FakeKubernetes;
  let dir: string;
  let kubeconfig: string;
  let seen: FakeKubernetes["seen"];

  before(async () => {
    fake = await startFakeKubernetes({
      workloads: WORKLOADS,
      serviceAccounts: SERVICE_ACCOUNTS,
      secrets: SECRETS,
      token: TOKEN,
    });
    seen = fake.seen;
    dir = mkdtempSync(join(tmpdir(), "regscan-k8s-"));
    kubeconfig = fake.writeKubeconfig(dir);
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const logs: string[] = [];
  const logger = pino({ level: "debug" }, { write: (s: string) => logs.push(s) });

  test("finds every workload kind's images, across namespaces, with pull-secret credentials", async () => {
    seen.length = 0;
    const source = new KubernetesSource({ logger, kubeconfig, excludeNamespaces: ["kube-system"] });
    const found = await source.images();
    assert.deepEqual([...found.keys()].sort(), [
      "docker.io/library/alpine",
      "docker.io/library/busybox",
      "ghcr.io/org/api",
      "ghcr.io/org/init",
      "ghcr.io/org/migrate",
      "k8s.gcr.io/pause",
      "quay.io/org/db",
      "registry.example.com:5000/team/debug",
      "registry.example.com:5000/team/web",
    ]);
    const web = found.get("registry.example.com:5000/team/web");
    assert.equal(web?.credsFor("registry.example.com:5000")?.username, "alice");
    assert.equal(web?.credsFor("registry.example.com:5000")?.password, PASSWORD);
    assert.match(web?.credsFor("registry.example.com:5000")?.provenance ?? "", /apps\/regcred/);
    const db = found.get("quay.io/org/db");
    assert.equal(db?.credsFor("quay.io")?.username, "robot", "the service account's pull secret");
    assert.equal(
      found.get("registry.example.com:5000/team/debug")?.credsFor("registry.example.com:5000"),
      undefined,
    );
    assert.ok(seen.every((s) => s.auth === `Bearer ${TOKEN}`));
    assert.ok(
      seen.some((s) => s.path === "/apis/apps/v1/deployments"),
      "listed across all namespaces",
    );
    assert.ok(seen.some((s) => s.path === "/apis/batch/v1/cronjobs"));
    const all = logs.join("");
    assert.match(all, /not a valid reference/);
    assert.ok(!all.includes(PASSWORD) && !all.includes(TOKEN), "no secret logged");
    assert.ok(!String(web).includes(PASSWORD));
  });

  test("configured namespaces are read one by one; the default exclusion drops k8s.gcr.io", async () => {
    seen.length = 0;
    const source = new KubernetesSource({ logger, kubeconfig, namespaces: ["other"] });
    const lookup = combineSources([source], new ImageFilter([], ["k8s.gcr.io/*"]), logger);
    const found = await lookup();
    assert.deepEqual([...found.keys()].sort(), ["docker.io/library/alpine", "ghcr.io/org/migrate"]);
    assert.ok(seen.some((s) => s.path === "/apis/apps/v1/namespaces/other/daemonsets"));
    assert.ok(!seen.some((s) => s.path === "/apis/apps/v1/deployments"));

    const everything = combineSources(
      [new KubernetesSource({ logger, kubeconfig, namespaces: ["apps"] })],
      new ImageFilter([], ["k8s.gcr.io/*"]),
      logger,
    );
    assert.ok(!(await everything()).has("k8s.gcr.io/pause"));
  });

  test("an unreachable or refusing API server is a clear error", async () => {
    const bad = join(dir, "bad-kubeconfig");
    writeFileSync(
      bad,
      "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: { server: 'http://127.0.0.1:1', insecure-skip-tls-verify: true }\nusers:\n- name: u\n  user: { token: wrong }\ncontexts:\n- name: x\n  context: { cluster: c, user: u }\ncurrent-context: x\n",
    );
    await assert.rejects(
      new KubernetesSource({ logger, kubeconfig: bad, timeoutMs: 5_000 }).images(),
      (err: unknown) => {
        assert.ok(err instanceof KubernetesSourceError);
        assert.match(err.message, /Kubernetes API: list Deployments/);
        return true;
      },
    );
    await assert.rejects(
      new KubernetesSource({ logger, kubeconfig: join(dir, "missing") }).images(),
      /cannot load the Kubernetes configuration from .*missing/,
    );
  });

  test("a kind the service account may not list is skipped with a warning; others still count", async () => {
    const strict = await startFakeKubernetes({
      workloads: WORKLOADS,
      serviceAccounts: SERVICE_ACCOUNTS,
      secrets: SECRETS,
      token: TOKEN,
      forbidden: ["cronjobs", "jobs"],
    });
    try {
      logs.length = 0;
      const found = await new KubernetesSource({
        logger,
        kubeconfig: strict.writeKubeconfig(dir, "strict-kubeconfig"),
        namespaces: ["apps", "other"],
      }).images();
      assert.ok(!found.has("docker.io/library/busybox"), "the CronJob's image is not listed");
      assert.ok(!found.has("ghcr.io/org/migrate"), "the Job's image is not listed");
      assert.ok(found.has("registry.example.com:5000/team/web"));
      assert.ok(found.has("docker.io/library/alpine"));
      const warnings = logs.filter((l) => l.includes("HTTP 403"));
      assert.equal(warnings.length, 4, "one warning per refused kind and namespace");
      assert.match(warnings[0] ?? "", /cannot list CronJobs in apps \(HTTP 403\); skipping them/);
    } finally {
      await strict.close();
    }
  });
});
