/**
 * A local HTTP server speaking the Kubernetes API that the Kubernetes image source uses: list
 * (with `limit` / `continue` paging, two items a page) for Deployments, StatefulSets,
 * DaemonSets, CronJobs, Jobs and Pods, across or within namespaces, and read for service
 * accounts and secrets, behind a bearer token. Plus a kubeconfig file that points at it.
 */
import { writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

/** A workload as the list API returns it. */
export type KubeItem = { metadata: { name: string; namespace: string }; spec: unknown };

/** What the fake cluster holds. */
export interface FakeCluster {
  /** By plural resource name: deployments, statefulsets, daemonsets, cronjobs, jobs, pods. */
  workloads: Record<string, KubeItem[]>;
  /** By `namespace/name`. */
  serviceAccounts: Record<string, unknown>;
  /** By `namespace/name`. */
  secrets: Record<string, unknown>;
  token: string;
  /** Plural resource names whose lists are refused with 403, as RBAC without the grant does. */
  forbidden?: string[];
}

/** A running fake API server. */
export interface FakeKubernetes {
  readonly url: string;
  /** Paths requested, with the Authorization header each carried. */
  readonly seen: Array<{ path: string; auth: string | undefined }>;
  /** Writes a kubeconfig for this server into `dir` and returns its path. */
  writeKubeconfig(dir: string, name?: string): string;
  close(): Promise<void>;
}

const GROUP: Record<string, string> = {
  deployments: "/apis/apps/v1",
  statefulsets: "/apis/apps/v1",
  daemonsets: "/apis/apps/v1",
  cronjobs: "/apis/batch/v1",
  jobs: "/apis/batch/v1",
  pods: "/api/v1",
};

/** `{ auths: { host: { auth } } }`, base64, as a `kubernetes.io/dockerconfigjson` secret holds it. */
export function dockerconfigjson(host: string, user: string, password: string): string {
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  return Buffer.from(JSON.stringify({ auths: { [host]: { auth } } })).toString("base64");
}

/** `{ host: { auth } }`, base64, as a `kubernetes.io/dockercfg` secret holds it. */
export function dockercfg(host: string, user: string, password: string): string {
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  return Buffer.from(JSON.stringify({ [host]: { auth } })).toString("base64");
}

/** A pod spec with these container (and init container) images. */
export function podSpec(
  images: string[],
  extra: Record<string, unknown> = {},
  init: string[] = [],
) {
  return {
    containers: images.map((image, i) => ({ name: `c${i}`, image })),
    ...(init.length > 0
      ? { initContainers: init.map((image, i) => ({ name: `i${i}`, image })) }
      : {}),
    ...extra,
  };
}

/** Starts the fake API server on a free loopback port. */
export async function startFakeKubernetes(cluster: FakeCluster): Promise<FakeKubernetes> {
  const seen: Array<{ path: string; auth: string | undefined }> = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    seen.push({ path: url.pathname, auth: req.headers.authorization });
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${cluster.token}`) {
      return send(401, {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        reason: "Unauthorized",
        code: 401,
      });
    }
    const notFound = () =>
      send(404, {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        reason: "NotFound",
        code: 404,
      });
    let m = /^\/api\/v1\/namespaces\/([^/]+)\/(serviceaccounts|secrets)\/([^/]+)$/.exec(
      url.pathname,
    );
    if (m) {
      const table = m[2] === "secrets" ? cluster.secrets : cluster.serviceAccounts;
      const found = table[`${m[1]}/${m[3]}`];
      return found ? send(200, found) : notFound();
    }
    m = /^(\/apis\/[a-z]+\/v1|\/api\/v1)(?:\/namespaces\/([^/]+))?\/([a-z]+)$/.exec(url.pathname);
    if (m && GROUP[m[3] ?? ""] === m[1]) {
      if (cluster.forbidden?.includes(m[3] ?? "")) {
        return send(403, {
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          reason: "Forbidden",
          code: 403,
        });
      }
      const ns = m[2];
      const items = (cluster.workloads[m[3] ?? ""] ?? []).filter(
        (i) => ns === undefined || i.metadata.namespace === ns,
      );
      const start = Number(url.searchParams.get("continue") ?? "0");
      const page = items.slice(start, start + 2);
      const next = start + 2 < items.length ? String(start + 2) : undefined;
      return send(200, {
        kind: "List",
        apiVersion: "v1",
        metadata: next ? { continue: next } : {},
        items: page,
      });
    }
    notFound();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    seen,
    writeKubeconfig(dir, name = "kubeconfig") {
      const path = join(dir, name);
      writeFileSync(
        path,
        [
          "apiVersion: v1",
          "kind: Config",
          "clusters:",
          "- name: local",
          // client-node refuses plain http unless TLS verification is explicitly off.
          `  cluster: { server: "${url}", insecure-skip-tls-verify: true }`,
          "users:",
          "- name: tester",
          `  user: { token: ${cluster.token} }`,
          "contexts:",
          "- name: test",
          "  context: { cluster: local, user: tester }",
          "current-context: test",
        ].join("\n"),
      );
      return path;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
