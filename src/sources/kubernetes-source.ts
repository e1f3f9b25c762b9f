/**
 * The images of a Kubernetes cluster's workloads (Flux v1's `ImagesToFetch`): the containers
 * and init containers of Deployments, StatefulSets, DaemonSets, CronJobs, Jobs and Pods, with
 * the pull secrets of each pod spec and of its service account as the image's credentials.
 * Reached in-cluster or through a kubeconfig; `@kubernetes/client-node` is loaded only here.
 */
import type {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  V1ObjectMeta,
  V1PodSpec,
  V1Secret,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { RegscanError } from "../errors.js";
import { parseImageRef } from "../image/ref.js";
import { importOptional } from "../optional-dependency.js";
import { Credentials } from "../registry/credentials/credentials.js";
import type { ImageCreds } from "../registry/credentials/image-creds.js";
import type { ImageSource } from "./image-source.js";

/** Settings of the Kubernetes source. */
export interface KubernetesSourceOptions {
  logger: Logger;
  /** A kubeconfig file; default: in-cluster when running in a pod, else $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string | undefined;
  /** The kubeconfig context (default: its current context). */
  context?: string | undefined;
  /** Namespaces to read (default: all). */
  namespaces?: readonly string[] | undefined;
  /** Namespaces to skip. */
  excludeNamespaces?: readonly string[] | undefined;
  /** Bound on each API call (default 30 s). */
  timeoutMs?: number | undefined;
}

/** The Kubernetes API could not be reached or refused a call. */
export class KubernetesSourceError extends RegscanError {
  readonly code = "KUBERNETES_SOURCE";
  /** The API server's HTTP status, when it answered. */
  readonly status: number | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number | undefined }) {
    super(message, options);
    this.status = options?.status;
  }
}

/**
 * Statuses that mean "this kind cannot be listed here" (RBAC does not grant it, or the API
 * server does not serve it): the kind is skipped with a warning, as Flux v1 did, rather
 * than failing the whole source every interval.
 */
const SKIPPED_KIND_STATUSES: ReadonlySet<number> = new Set([403, 404]);

interface Workload {
  kind: string;
  metadata?: V1ObjectMeta | undefined;
  spec?: V1PodSpec | undefined;
}

/** One object to read from a namespace (the namespace and name are easy to swap). */
interface NamespacedRead {
  apis: Apis;
  namespace: string;
  name: string;
  signal: AbortSignal | undefined;
}

interface Apis {
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
}

const PAGE_SIZE = 500;
const MAX_PAGES = 200;

/** The pod template's spec of a Deployment, StatefulSet, DaemonSet or Job. */
function templateSpec(item: { spec?: unknown }): V1PodSpec | undefined {
  return (item.spec as { template?: { spec?: V1PodSpec } } | undefined)?.template?.spec;
}

/** Repositories and credentials found in a cluster's workloads. */
export class KubernetesSource implements ImageSource {
  readonly name = "kubernetes";
  #apis: Promise<Apis> | undefined;

  readonly #opts: KubernetesSourceOptions;

  constructor(opts: KubernetesSourceOptions) {
    this.#opts = opts;
  }

  async images(signal?: AbortSignal): Promise<ImageCreds> {
    this.#apis ??= this.#connect();
    const apis = await this.#apis;
    const workloads = await this.#workloads(apis, signal);
    const secretCache = new Map<string, Promise<Credentials | undefined>>();
    const accountCache = new Map<string, Promise<string[]>>();
    const out: ImageCreds = new Map();
    for (const w of workloads) {
      const namespace = w.metadata?.namespace ?? "default";
      if (this.#opts.excludeNamespaces?.includes(namespace)) continue;
      const spec = w.spec;
      if (!spec) continue;
      const secretNames = new Set(
        (spec.imagePullSecrets ?? []).map((s) => s.name).filter((n): n is string => !!n),
      );
      const account = spec.serviceAccountName ?? spec.serviceAccount ?? "default";
      const accountKey = `${namespace}/${account}`;
      let fromAccount = accountCache.get(accountKey);
      if (!fromAccount) {
        fromAccount = this.#accountSecrets({ apis, namespace, name: account, signal });
        accountCache.set(accountKey, fromAccount);
      }
      for (const n of await fromAccount) secretNames.add(n);
      let creds = Credentials.none();
      for (const secretName of [...secretNames].sort()) {
        const key = `${namespace}/${secretName}`;
        let found = secretCache.get(key);
        if (!found) {
          found = this.#secretCredentials({ apis, namespace, name: secretName, signal });
          secretCache.set(key, found);
        }
        const c = await found;
        if (c) creds = creds.merge(c);
      }
      const containers = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
      for (const container of containers) {
        if (!container.image) continue;
        let repo: string;
        try {
          repo = parseImageRef(container.image).name.toString();
        } catch (err) {
          this.#opts.logger.warn(
            {
              workload: `${w.kind}/${namespace}/${w.metadata?.name}`,
              container: container.name,
              err: (err as Error).message,
            },
            "skipping a container image that is not a valid reference",
          );
          continue;
        }
        const existing = out.get(repo);
        out.set(repo, existing ? existing.merge(creds) : creds);
      }
    }
    return out;
  }

  async #connect(): Promise<Apis> {
    const k8s = await importOptional({
      packageName: "@kubernetes/client-node",
      feature: "the Kubernetes image source",
      load: () => import("@kubernetes/client-node"),
    });
    const kc: KubeConfig = new k8s.KubeConfig();
    try {
      if (this.#opts.kubeconfig) kc.loadFromFile(this.#opts.kubeconfig);
      else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
      else kc.loadFromDefault();
      if (this.#opts.context) kc.setCurrentContext(this.#opts.context);
    } catch (err) {
      throw new KubernetesSourceError(
        `cannot load the Kubernetes configuration${this.#opts.kubeconfig ? ` from ${this.#opts.kubeconfig}` : ""}: ${(err as Error).message}`,
      );
    }
    if (!kc.getCurrentCluster()) {
      throw new KubernetesSourceError(
        `no Kubernetes cluster configured${this.#opts.kubeconfig ? ` in ${this.#opts.kubeconfig}` : ""}${this.#opts.context ? ` for context ${this.#opts.context}` : ""}`,
      );
    }
    return {
      core: kc.makeApiClient(k8s.CoreV1Api),
      apps: kc.makeApiClient(k8s.AppsV1Api),
      batch: kc.makeApiClient(k8s.BatchV1Api),
    };
  }

  async #workloads(apis: Apis, signal: AbortSignal | undefined): Promise<Workload[]> {
    const namespaces =
      this.#opts.namespaces && this.#opts.namespaces.length > 0
        ? this.#opts.namespaces
        : [undefined];
    const out: Workload[] = [];
    type Page = {
      metadata?: { _continue?: string };
      items: Array<{ metadata?: V1ObjectMeta; spec?: unknown }>;
    };
    type Lister = (
      ns: string | undefined,
      page: { limit: number; _continue?: string },
    ) => Promise<Page>;
    const { apps, batch, core } = apis;
    const kinds: Array<[string, Lister, (item: { spec?: unknown }) => V1PodSpec | undefined]> = [
      [
        "Deployment",
        (ns, p) =>
          ns
            ? apps.listNamespacedDeployment({ namespace: ns, ...p })
            : apps.listDeploymentForAllNamespaces(p),
        templateSpec,
      ],
      [
        "StatefulSet",
        (ns, p) =>
          ns
            ? apps.listNamespacedStatefulSet({ namespace: ns, ...p })
            : apps.listStatefulSetForAllNamespaces(p),
        templateSpec,
      ],
      [
        "DaemonSet",
        (ns, p) =>
          ns
            ? apps.listNamespacedDaemonSet({ namespace: ns, ...p })
            : apps.listDaemonSetForAllNamespaces(p),
        templateSpec,
      ],
      [
        "CronJob",
        (ns, p) =>
          ns
            ? batch.listNamespacedCronJob({ namespace: ns, ...p })
            : batch.listCronJobForAllNamespaces(p),
        (i) =>
          (i.spec as { jobTemplate?: { spec?: { template?: { spec?: V1PodSpec } } } } | undefined)
            ?.jobTemplate?.spec?.template?.spec,
      ],
      [
        "Job",
        (ns, p) =>
          ns ? batch.listNamespacedJob({ namespace: ns, ...p }) : batch.listJobForAllNamespaces(p),
        templateSpec,
      ],
      [
        "Pod",
        (ns, p) =>
          ns ? core.listNamespacedPod({ namespace: ns, ...p }) : core.listPodForAllNamespaces(p),
        (i) => i.spec as V1PodSpec | undefined,
      ],
    ];
    for (const ns of namespaces) {
      for (const [kind, list, specOf] of kinds) {
        const what = `list ${kind}s${ns ? ` in ${ns}` : ""}`;
        const found: Workload[] = [];
        let cont: string | undefined;
        try {
          for (let page = 0; ; page++) {
            if (page === MAX_PAGES) {
              this.#opts.logger.warn(
                { kind, namespace: ns, pages: MAX_PAGES, pageSize: PAGE_SIZE },
                "too many workloads to list; using the first pages only",
              );
              break;
            }
            const result = await this.#call(what, signal, () =>
              list(ns, cont ? { limit: PAGE_SIZE, _continue: cont } : { limit: PAGE_SIZE }),
            );
            for (const item of result.items)
              found.push({ kind, metadata: item.metadata, spec: specOf(item) });
            cont = result.metadata?._continue || undefined;
            if (!cont) break;
          }
        } catch (err) {
          if (
            !(err instanceof KubernetesSourceError) ||
            err.status === undefined ||
            !SKIPPED_KIND_STATUSES.has(err.status)
          )
            throw err;
          this.#opts.logger.warn(
            { kind, namespace: ns, status: err.status },
            `cannot ${what} (HTTP ${err.status}); skipping them`,
          );
          continue;
        }
        out.push(...found);
      }
    }
    return out;
  }

  async #accountSecrets({
    apis,
    namespace,
    name: account,
    signal,
  }: NamespacedRead): Promise<string[]> {
    try {
      const sa = await this.#call(`read service account ${namespace}/${account}`, signal, () =>
        apis.core.readNamespacedServiceAccount({ namespace, name: account }),
      );
      return (sa.imagePullSecrets ?? []).map((s) => s.name).filter((n): n is string => !!n);
    } catch (err) {
      this.#opts.logger.warn(
        { namespace, serviceAccount: account, err: (err as Error).message },
        "cannot read a service account's pull secrets",
      );
      return [];
    }
  }

  async #secretCredentials({
    apis,
    namespace,
    name,
    signal,
  }: NamespacedRead): Promise<Credentials | undefined> {
    let secret: V1Secret;
    try {
      secret = await this.#call(`read secret ${namespace}/${name}`, signal, () =>
        apis.core.readNamespacedSecret({ namespace, name }),
      );
    } catch (err) {
      this.#opts.logger.warn(
        { namespace, secret: name, err: (err as Error).message },
        "cannot read a pull secret",
      );
      return undefined;
    }
    const key =
      secret.type === "kubernetes.io/dockerconfigjson"
        ? ".dockerconfigjson"
        : secret.type === "kubernetes.io/dockercfg"
          ? ".dockercfg"
          : undefined;
    const data = key ? secret.data?.[key] : undefined;
    if (!key || data === undefined) {
      this.#opts.logger.warn(
        { namespace, secret: name, type: secret.type },
        "pull secret is not of type kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg; ignoring it",
      );
      return undefined;
    }
    try {
      return Credentials.parse(
        `kubernetes-secret:${namespace}/${name}`,
        Buffer.from(data, "base64"),
      );
    } catch (err) {
      this.#opts.logger.warn(
        { namespace, secret: name, err: (err as Error).message },
        "cannot parse a pull secret; ignoring it",
      );
      return undefined;
    }
  }

  /** Runs one API call bounded in time and by the caller's signal, with a clear error. */
  async #call<T>(what: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs ?? 30_000);
    const bound = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () =>
        reject(
          new KubernetesSourceError(
            `Kubernetes API: ${what}: ${timeout.aborted ? "timed out" : "cancelled"}`,
          ),
        );
      if (bound.aborted) onAbort();
      else bound.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([run(), aborted]);
    } catch (err) {
      if (err instanceof KubernetesSourceError) throw err;
      // client-node's ApiException carries the HTTP status as `code`.
      const code = (err as { code?: unknown }).code;
      const status = typeof code === "number" ? code : undefined;
      const detail = status === undefined ? (err as Error).message : `HTTP ${status}`;
      throw new KubernetesSourceError(`Kubernetes API: ${what}: ${detail}`, {
        cause: err,
        status,
      });
    } finally {
      if (onAbort) bound.removeEventListener("abort", onAbort);
    }
  }
}
