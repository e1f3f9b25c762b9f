/**
 * `regscan serve --kubernetes` end to end: the images of a (fake) cluster's workloads are
 * watched, and a workload's pull secret is what gets into a password-protected registry.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { dockerconfigjson, podSpec, startFakeKubernetes } from "../sources/fake-kubernetes.js";
import { ImageBuilder } from "../support/image-builder.js";
import { cleanupAll, makeTempDir, onCleanup, waitFor } from "../support/processes.js";
import { startRegistry } from "../support/registry.js";
import { startServe } from "./serve-process.js";

after(cleanupAll);

describe("regscan serve with the Kubernetes source", () => {
  test("watches the cluster's images with their pull secrets", async () => {
    const registry = await startRegistry({ mode: "htpasswd" });
    const [user, password] = Object.entries(registry.users)[0]!;
    const builder = new ImageBuilder(registry);
    await builder.pushImage("team/private", ["v1", "v2"]);
    await builder.pushImage("team/public", ["1.0"]);
    await builder.close();
    const token = "cluster-token-9e2";
    const fake = await startFakeKubernetes({
      token,
      workloads: {
        deployments: [
          {
            metadata: { name: "app", namespace: "apps" },
            spec: {
              template: {
                spec: podSpec([`${registry.host}/team/private:v1`], {
                  imagePullSecrets: [{ name: "regcred" }],
                }),
              },
            },
          },
        ],
        cronjobs: [
          {
            metadata: { name: "nightly", namespace: "apps" },
            spec: {
              jobTemplate: { spec: { template: { spec: podSpec(["k8s.gcr.io/pause:3.9"]) } } },
            },
          },
        ],
      },
      serviceAccounts: { "apps/default": { metadata: { name: "default", namespace: "apps" } } },
      secrets: {
        "apps/regcred": {
          metadata: { name: "regcred", namespace: "apps" },
          type: "kubernetes.io/dockerconfigjson",
          data: { ".dockerconfigjson": dockerconfigjson(registry.host, user, password) },
        },
      },
    });
    onCleanup(() => fake.close());
    const kubeconfig = fake.writeKubeconfig(makeTempDir("regscan-kube-serve-"));
    const serve = await startServe([
      "--kubernetes",
      "--kubeconfig",
      kubeconfig,
      "--namespace",
      "apps",
      "--insecure-host",
      registry.host,
      "--cache",
      "memory:",
    ]);
    const name = `${registry.host}/team/private`;
    await waitFor(async () => (await serve.fetchJson(`/v1/repositories/${name}`)).status === 200, {
      what: "the cluster's private image to be cached",
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    const repo = await serve.fetchJson(`/v1/repositories/${name}`);
    assert.deepEqual((repo.body.tags as string[]).slice().sort(), ["v1", "v2"]);
    const list = await serve.fetchJson("/v1/repositories");
    assert.deepEqual(
      (list.body.repositories as Array<{ name: string }>).map((r) => r.name),
      [name],
      "k8s.gcr.io is excluded by default; nothing else is in the cluster",
    );
    assert.equal(
      (await serve.fetchJson(`/v1/repositories/${registry.host}/team/public`)).status,
      404,
    );
    const out = serve.output();
    assert.ok(!out.includes(password) && !out.includes(token), "no secret in the logs");
    assert.equal((await serve.stop()).code, 0);
    await registry.stop();
  });
});
