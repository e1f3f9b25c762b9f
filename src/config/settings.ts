/**
 * Every configuration setting with its command-line flag and `REGSCAN_*` environment
 * variable. The CLI registers its options from this table, and the loader overlays
 * environment and flag values onto the file with it, so the three never drift apart.
 */

/** How a flag or environment value is turned into a configuration value. */
export type SettingKind =
  | "string"
  | "number"
  | "integer"
  | "boolean"
  | "duration"
  | "list"
  | "mirrors"
  | "budgets"
  | "images"
  | "webhooks";

/** One setting of the configuration. */
export interface Setting {
  /** Dotted path in the configuration, e.g. `registry.rps`. */
  path: string;
  /** Long flag name without dashes, e.g. `rps`, `insecure-host`. */
  flag: string;
  /** Environment variable, e.g. `REGSCAN_RPS`. */
  env: string;
  kind: SettingKind;
  /** One line for `--help`. */
  help: string;
  /** True for secrets: masked whenever the configuration is shown. */
  secret?: boolean;
  /**
   * For a boolean that defaults to true: the flag takes an optional value (`--poll-tags
   * false`), since a bare flag could only say what the default says already.
   */
  optionalValue?: boolean;
}

/** The settings, in the order `--help` lists them. */
export const SETTINGS: readonly Setting[] = [
  {
    path: "listen",
    flag: "listen",
    env: "REGSCAN_LISTEN",
    kind: "string",
    help: "address to serve on, host:port (default 127.0.0.1:8080)",
  },
  {
    path: "apiToken",
    flag: "api-token",
    env: "REGSCAN_API_TOKEN",
    kind: "string",
    help: "bearer token required by /v1 (not by /healthz, /readyz, /metrics)",
    secret: true,
  },
  {
    path: "apiTokenFile",
    flag: "api-token-file",
    env: "REGSCAN_API_TOKEN_FILE",
    kind: "string",
    help: "file holding the API bearer token",
  },
  {
    path: "cache",
    flag: "cache",
    env: "REGSCAN_CACHE",
    kind: "string",
    help: "store URL: sqlite:PATH (default), memory:, memcached://h:p[,h:p], memcached+srv://NAME, redis://...",
  },
  {
    path: "replicaId",
    flag: "replica-id",
    env: "REGSCAN_REPLICA_ID",
    kind: "string",
    help: "this replica's name in shared-store leases (default hostname:pid:random)",
  },
  {
    path: "log.level",
    flag: "log-level",
    env: "REGSCAN_LOG_LEVEL",
    kind: "string",
    help: "trace, debug, info, warn, error, fatal or silent (default info)",
  },
  {
    path: "log.format",
    flag: "log-format",
    env: "REGSCAN_LOG_FORMAT",
    kind: "string",
    help: "json or pretty (default json)",
  },
  {
    path: "registry.rps",
    flag: "rps",
    env: "REGSCAN_RPS",
    kind: "number",
    help: "requests per second per registry host (default 200)",
  },
  {
    path: "registry.burst",
    flag: "burst",
    env: "REGSCAN_BURST",
    kind: "integer",
    help: "burst per registry host and in-flight requests per repository (default 125)",
  },
  {
    path: "registry.platform",
    flag: "platform",
    env: "REGSCAN_PLATFORM",
    kind: "string",
    help: "platform to describe for multi-platform images (default linux/amd64)",
  },
  {
    path: "registry.insecureHosts",
    flag: "insecure-host",
    env: "REGSCAN_INSECURE_HOSTS",
    kind: "list",
    help: "registry host allowed plain HTTP / unverified TLS (repeatable)",
  },
  {
    path: "registry.caFiles",
    flag: "ca-file",
    env: "REGSCAN_CA_FILES",
    kind: "list",
    help: "extra CA bundle (PEM) to trust (repeatable)",
  },
  {
    path: "registry.mirrors",
    flag: "mirror",
    env: "REGSCAN_MIRRORS",
    kind: "mirrors",
    help: "HOST=MIRROR: try MIRROR first for HOST (repeatable)",
  },
  {
    path: "registry.budgets",
    flag: "registry-budget",
    env: "REGSCAN_REGISTRY_BUDGETS",
    kind: "budgets",
    help: "HOST=RPS[/BURST]: request budget of HOST (repeatable; built-in for docker.io, ghcr.io, ECR, GAR, quay.io)",
  },
  {
    path: "registry.trace",
    flag: "trace",
    env: "REGSCAN_TRACE",
    kind: "boolean",
    help: "log every registry request (no secrets)",
  },
  {
    path: "registry.requestTimeout",
    flag: "request-timeout",
    env: "REGSCAN_REQUEST_TIMEOUT",
    kind: "duration",
    help: "total deadline of one registry request, headers and body (default 60s)",
  },
  {
    path: "registry.tagListTimeout",
    flag: "tag-list-timeout",
    env: "REGSCAN_TAG_LIST_TIMEOUT",
    kind: "duration",
    help: "total deadline of one whole tag listing, every page (default 5m)",
  },
  {
    path: "credentials.dockerConfig",
    flag: "docker-config",
    env: "REGSCAN_DOCKER_CONFIG",
    kind: "string",
    help: "docker config.json with default credentials",
  },
  {
    path: "credentials.pullSecretDir",
    flag: "pull-secret-dir",
    env: "REGSCAN_PULL_SECRET_DIR",
    kind: "string",
    help: "directory of mounted Kubernetes pull-secret files",
  },
  {
    path: "credentials.azureConfig",
    flag: "azure-config",
    env: "REGSCAN_AZURE_CONFIG",
    kind: "string",
    help: "Azure cloud config (default /etc/kubernetes/azure.json)",
  },
  {
    path: "credentials.ecr.regions",
    flag: "ecr-region",
    env: "REGSCAN_ECR_REGIONS",
    kind: "list",
    help: "AWS region whose ECR registries to use (repeatable; default detected)",
  },
  {
    path: "credentials.ecr.includeIds",
    flag: "ecr-include-id",
    env: "REGSCAN_ECR_INCLUDE_IDS",
    kind: "list",
    help: "only these AWS account IDs' ECR registries (repeatable)",
  },
  {
    path: "credentials.ecr.excludeIds",
    flag: "ecr-exclude-id",
    env: "REGSCAN_ECR_EXCLUDE_IDS",
    kind: "list",
    help: "never these AWS account IDs (default: the EKS system accounts)",
  },
  {
    path: "credentials.require",
    flag: "require",
    env: "REGSCAN_REQUIRE",
    kind: "list",
    help: "credential provider whose pre-flight must pass at startup: ecr (repeatable)",
  },
  {
    path: "images.include",
    flag: "include-image",
    env: "REGSCAN_INCLUDE_IMAGES",
    kind: "list",
    help: "only watch images matching this glob (repeatable)",
  },
  {
    path: "images.exclude",
    flag: "exclude-image",
    env: "REGSCAN_EXCLUDE_IMAGES",
    kind: "list",
    help: "never watch images matching this glob (repeatable; default k8s.gcr.io/*)",
  },
  {
    path: "timestampLabels",
    flag: "timestamp-labels",
    env: "REGSCAN_TIMESTAMP_LABELS",
    kind: "list",
    help: "repositories (globs) whose creation time comes from timestamp labels (repeatable)",
  },
  {
    path: "repositories",
    flag: "image",
    env: "REGSCAN_IMAGES",
    kind: "images",
    help: "image repository to watch; adds to the file's list (repeatable)",
  },
  {
    path: "defaults.tags.include",
    flag: "tag-include",
    env: "REGSCAN_TAG_INCLUDE",
    kind: "list",
    help: "default tag filter: keep tags matching this glob or /regex/ (repeatable)",
  },
  {
    path: "defaults.tags.exclude",
    flag: "tag-exclude",
    env: "REGSCAN_TAG_EXCLUDE",
    kind: "list",
    help: "default tag filter: drop tags matching this glob or /regex/ (repeatable)",
  },
  {
    path: "defaults.tags.max",
    flag: "tag-max",
    env: "REGSCAN_TAG_MAX",
    kind: "integer",
    help: "default: keep at most this many tags per repository",
  },
  {
    path: "defaults.tags.order",
    flag: "tag-order",
    env: "REGSCAN_TAG_ORDER",
    kind: "string",
    help: "semver or listing: which tags are newest for --tag-max",
  },
  {
    path: "defaults.interval",
    flag: "refresh-interval",
    env: "REGSCAN_REFRESH_INTERVAL",
    kind: "duration",
    help: "default time between scans of a repository",
  },
  {
    path: "warmer.interval",
    flag: "interval",
    env: "REGSCAN_INTERVAL",
    kind: "duration",
    help: "how often image sources are asked again (default 1m)",
  },
  {
    path: "warmer.refreshJitter",
    flag: "refresh-jitter",
    env: "REGSCAN_REFRESH_JITTER",
    kind: "number",
    help: "spread tag refresh intervals by up to this fraction either way (default 0.1)",
  },
  {
    path: "warmer.maxIntervalFactor",
    flag: "max-interval-factor",
    env: "REGSCAN_MAX_INTERVAL_FACTOR",
    kind: "integer",
    help: "list a quiet repository up to this many times less often than its interval (default 8)",
  },
  {
    path: "warmer.concurrency",
    flag: "concurrency",
    env: "REGSCAN_CONCURRENCY",
    kind: "integer",
    help: "repositories scanned at the same time (default 16)",
  },
  {
    path: "warmer.perHostConcurrency",
    flag: "per-host-concurrency",
    env: "REGSCAN_PER_HOST_CONCURRENCY",
    kind: "integer",
    help: "repositories of one registry host scanned at the same time (default 4)",
  },
  {
    path: "warmer.maxTagsInFlight",
    flag: "max-tags-in-flight",
    env: "REGSCAN_MAX_TAGS_IN_FLIGHT",
    kind: "integer",
    help: "tags of the repositories scanned at the same time, which bounds the memory scans hold (default 60000)",
  },
  {
    path: "warmer.pollTags",
    flag: "poll-tags",
    env: "REGSCAN_POLL_TAGS",
    kind: "boolean",
    optionalValue: true,
    help: "HEAD every tag once per repository interval so moved tags are seen without webhooks (true or false; default true)",
  },
  {
    path: "warmer.leaseTtl",
    flag: "lease-ttl",
    env: "REGSCAN_LEASE_TTL",
    kind: "duration",
    help: "how long a repository lease lasts unless renewed (default 5m)",
  },
  {
    path: "warmer.tagsCachedByRepository",
    flag: "tags-cached-by-repository",
    env: "REGSCAN_TAGS_CACHED_BY_REPOSITORY",
    kind: "boolean",
    optionalValue: true,
    help: "export regscan_warmer_tags_cached with a series per repository (true or false; default true)",
  },
  {
    path: "sources.file.path",
    flag: "images-file",
    env: "REGSCAN_IMAGES_FILE",
    kind: "string",
    help: "file of image references, one per line, re-read when it changes",
  },
  {
    path: "sources.file.pollInterval",
    flag: "images-file-poll",
    env: "REGSCAN_IMAGES_FILE_POLL",
    kind: "duration",
    help: "how often to check the images file when change events are missed (default 10s)",
  },
  {
    path: "sources.kubernetes.enabled",
    flag: "kubernetes",
    env: "REGSCAN_KUBERNETES",
    kind: "boolean",
    help: "watch the images of a Kubernetes cluster's workloads",
  },
  {
    path: "sources.kubernetes.kubeconfig",
    flag: "kubeconfig",
    env: "REGSCAN_KUBECONFIG",
    kind: "string",
    help: "kubeconfig file (default: in-cluster, else $KUBECONFIG, else ~/.kube/config)",
  },
  {
    path: "sources.kubernetes.context",
    flag: "kube-context",
    env: "REGSCAN_KUBE_CONTEXT",
    kind: "string",
    help: "kubeconfig context to use",
  },
  {
    path: "sources.kubernetes.namespaces",
    flag: "namespace",
    env: "REGSCAN_NAMESPACES",
    kind: "list",
    help: "namespace to read workloads from (repeatable; default all)",
  },
  {
    path: "sources.kubernetes.excludeNamespaces",
    flag: "exclude-namespace",
    env: "REGSCAN_EXCLUDE_NAMESPACES",
    kind: "list",
    help: "namespace to ignore (repeatable)",
  },
  {
    path: "server.maxBodyBytes",
    flag: "max-body-bytes",
    env: "REGSCAN_MAX_BODY_BYTES",
    kind: "integer",
    help: "largest request body accepted (default 65536)",
  },
  {
    path: "server.rateLimit.rps",
    flag: "api-rps",
    env: "REGSCAN_API_RPS",
    kind: "number",
    help: "API requests per second per client (default 50)",
  },
  {
    path: "server.rateLimit.burst",
    flag: "api-burst",
    env: "REGSCAN_API_BURST",
    kind: "integer",
    help: "API request burst per client (default 100)",
  },
  {
    path: "server.shutdownTimeout",
    flag: "shutdown-timeout",
    env: "REGSCAN_SHUTDOWN_TIMEOUT",
    kind: "duration",
    help: "how long to let in-flight work finish on SIGTERM (default 20s)",
  },
  {
    path: "server.maxConnections",
    flag: "max-connections",
    env: "REGSCAN_MAX_CONNECTIONS",
    kind: "integer",
    help: "most API connections open at once (default 1024)",
  },
  {
    path: "server.maxConnectionsPerClient",
    flag: "max-connections-per-client",
    env: "REGSCAN_MAX_CONNECTIONS_PER_CLIENT",
    kind: "integer",
    help: "most API connections open at once from one client address (default 64)",
  },
  {
    path: "server.maxHeavyRequests",
    flag: "max-heavy-requests",
    env: "REGSCAN_MAX_HEAVY_REQUESTS",
    kind: "integer",
    help: "whole-repository answers built at once; 32 more wait, the rest get 503 (default 4)",
  },
  {
    path: "server.refreshMinGap",
    flag: "refresh-min-gap",
    env: "REGSCAN_REFRESH_MIN_GAP",
    kind: "duration",
    help: "least time between two priority refreshes of one repository (default 5s)",
  },
  {
    path: "server.webhookWindow",
    flag: "webhook-window",
    env: "REGSCAN_WEBHOOK_WINDOW",
    kind: "duration",
    help: "webhook events for one repository less than this apart become one refresh (default 250ms)",
  },
  {
    path: "server.apiThread",
    flag: "api-thread",
    env: "REGSCAN_API_THREAD",
    kind: "boolean",
    optionalValue: true,
    help: "serve the HTTP API from a thread of its own, with its own store connection, so reads never wait for the warmer; costs up to about 60 MiB (true or false; default false; not with a memory: store)",
  },
  {
    path: "server.sharedAnswers",
    flag: "shared-answers",
    env: "REGSCAN_SHARED_ANSWERS",
    kind: "boolean",
    optionalValue: true,
    help: "share repository answers with the other replicas through the store, so that each is built once per version (true or false; default true; never with a memory: store)",
  },
  {
    path: "server.warmerNice",
    flag: "warmer-nice",
    env: "REGSCAN_WARMER_NICE",
    kind: "integer",
    help: "nice value (0-19) of the warmer's thread, so reads on the API thread go first on busy cores (Linux; default 10 with --api-thread, else the process's own)",
  },
  {
    path: "webhooks",
    flag: "webhook",
    env: "REGSCAN_WEBHOOKS",
    kind: "webhooks",
    help: "turn on the receiver POST /v1/webhooks/KIND: distribution, harbor, dockerhub, github, quay, acr, gar, ecr, generic (repeatable)",
  },
  {
    path: "webhooks.*.secret",
    flag: "webhook-secret",
    env: "REGSCAN_WEBHOOK_SECRETS",
    kind: "webhooks",
    help: "KIND=env:NAME or KIND=file:PATH: where a receiver's secret is read (repeatable)",
  },
];

/** commander's attribute name for a long flag: `insecure-host` -> `insecureHost`. */
export function flagAttribute(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Paths of secret settings (masked when shown). */
export const SECRET_PATHS: readonly string[] = SETTINGS.filter((s) => s.secret).map((s) => s.path);
