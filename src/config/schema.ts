/**
 * The schema of regscan's configuration file (YAML), validated with zod. The same schema
 * checks the values that come from environment variables and command-line flags, so every
 * setting is validated the same way wherever it was given.
 */
import { z } from "zod";
import { sqliteUrlProblem } from "../cache/stores/sqlite-path.js";
import { compileTagFilter, InvalidTagFilterError } from "../cache/tag-filter.js";
import { RegscanError } from "../errors.js";
import { parseImageRef } from "../image/ref.js";
import { webhooksSchema } from "../server/webhooks/config.js";
import { DEFAULT_IMAGE_EXCLUDES } from "../sources/image-glob.js";
import { formatDuration, parseDuration } from "./duration.js";
import { toTagFilterOptions } from "./tag-filter-options.js";

/** A duration (`30s`, `5m`, `1h30m`, or a number of seconds) in milliseconds. */
const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `expected a duration such as "30s", "5m" or "1h30m", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

/**
 * A duration of at least `minMs`: an interval of 0 would scan (or poll) in a busy loop, so
 * it is refused here rather than discovered as thousands of scans a second.
 */
function durationAtLeast(minMs: number) {
  return duration.refine((ms) => ms >= minMs, {
    message: `expected a duration of at least ${formatDuration(minMs)}`,
  });
}

/** How often anything is scanned or asked again: at least a second. */
const interval = durationAtLeast(1000);

const platform = z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, {
  message: 'expected a platform "os/arch" or "os/arch/variant", e.g. "linux/arm64"',
});

const listenAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/, {
    message: 'expected "host:port" (e.g. "127.0.0.1:8080", ":8080", "[::1]:8080")',
  })
  // Port 0 asks the system for any free port (tests use it); past 65535 there is no port.
  .refine((address) => Number(address.slice(address.lastIndexOf(":") + 1)) <= 65_535, {
    message: "the port must be between 1 and 65535 (or 0 for any free port)",
  });

const globs = z.array(z.string().min(1));

/**
 * A store URL. The store checks it whole when it is opened; this catches at load time (and
 * in `config check`) what is surely wrong, such as an empty value that was meant as "the
 * default".
 */
const storeUrl = z
  .string()
  .refine((url) => url.trim() !== "", {
    message:
      "empty: leave the setting out for the default store (sqlite in the user cache directory)",
  })
  .refine((url) => url.trim() === "" || /^\s*[a-z][a-z0-9+]*:/i.test(url), {
    message:
      'expected a store URL such as "sqlite:PATH", "memory:", "memcached://HOST:PORT" or "redis://HOST:PORT"',
  })
  .superRefine((url, ctx) => {
    // The file an sqlite: URL names is checked as the store would (nothing is created).
    const sqlite = /^sqlite:(.*)$/is.exec(url.trim());
    const problem = sqlite ? sqliteUrlProblem(sqlite[1] ?? "") : undefined;
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, input: url });
  });

/** What an API bearer token may be: one word of visible characters. */
export const API_TOKEN = /^\S+$/;

/**
 * A mirror is a registry host, optionally written as a URL. No user or password in it: a
 * mirror's credentials come from the docker config like any registry's, and a host with
 * userinfo would otherwise end up in logs and request URLs.
 */
const mirrorHost = z
  .string()
  .regex(/^(?:https?:\/\/)?(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?\/?$/, {
    message:
      'expected a mirror host "host[:port]" (no user or password; a mirror\'s credentials come from the docker config)',
  });

/** The registry a mirror stands in for, as image references name it: `host[:port]`. */
const registryHost = z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/, {
  message: 'expected a registry host "host[:port]", e.g. "docker.io"',
});

/**
 * A record keyed by registry host. zod's records drop a `__proto__` key without a word (a
 * guard against prototype pollution), which would lose a setting silently: it is refused instead.
 */
function byRegistryHost<K extends z.ZodType<string>, V extends z.ZodType>(key: K, value: V) {
  return z.preprocess(
    (input, ctx) => {
      if (typeof input === "object" && input !== null && Object.hasOwn(input, "__proto__")) {
        ctx.addIssue({
          code: "custom",
          message: 'expected a registry host "host[:port]", not "__proto__"',
          path: ["__proto__"],
          input,
        });
      }
      return input;
    },
    z.record(key, value),
  );
}

/** Mirrors by registry host. */
const mirrorsSchema = byRegistryHost(registryHost, z.array(mirrorHost));

/** Why `compileTagFilter` or `parseImageRef` refused a value, for a configuration problem. */
function reasonOf(err: unknown): string {
  return err instanceof RegscanError ? err.message : String(err);
}

/**
 * Which tags of a repository to keep, applied before any metadata is fetched. Compiled here
 * so that a pattern that does not compile stops startup (and `config check`) with the file,
 * line and path of the filter, not at the repository's first scan.
 */
export const tagFilterSchema = z
  .strictObject({
    /** Globs or `/regular expressions/`; a tag must match one (all tags when empty). */
    include: globs.optional(),
    /** Globs or `/regular expressions/`; a tag matching one is dropped. */
    exclude: globs.optional(),
    /** Keep at most this many tags (the newest by `order`). */
    max: z.number().int().positive().optional(),
    /** How "newest" is decided for `max`: by semantic version, or by the registry's order. */
    order: z.enum(["semver", "listing"]).optional(),
  })
  .superRefine((filter, ctx) => {
    try {
      compileTagFilter(toTagFilterOptions(filter));
    } catch (err) {
      ctx.addIssue({ code: "custom", message: reasonOf(err), path: patternPath(filter, err) });
    }
  });

/** The path of the pattern a filter error names, so that the problem points at its line. */
function patternPath(
  filter: { include?: string[] | undefined; exclude?: string[] | undefined },
  err: unknown,
): PropertyKey[] {
  if (!(err instanceof InvalidTagFilterError)) return [];
  for (const key of ["include", "exclude"] as const) {
    const i = filter[key]?.indexOf(err.pattern) ?? -1;
    if (i >= 0) return [key, i];
  }
  return [];
}

/** A repository as written: a name, optionally with a tag (ignored), checked at load time. */
const repositoryName = z
  .string()
  .min(1)
  .superRefine((name, ctx) => {
    try {
      parseImageRef(name);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: reasonOf(err) });
    }
  });

/** A repository is a name, or a name with options. */
const repositorySchema = z.preprocess(
  (v) => (typeof v === "string" ? { name: v } : v),
  z.strictObject({
    /** An image repository, e.g. `alpine`, `ghcr.io/org/app`, `localhost:5000/team/app`. */
    name: repositoryName,
    tags: tagFilterSchema.optional(),
    platform: platform.optional(),
    interval: interval.optional(),
  }),
);

const awsAccountId = z
  .string()
  .regex(/^\d{12}$/, { message: "expected a 12-digit AWS account ID" });

const ecrSchema = z.strictObject({
  regions: z.array(z.string().min(1)).default([]),
  includeIds: z.array(awsAccountId).default([]),
  excludeIds: z.array(awsAccountId).optional(),
});

/**
 * Request budgets by registry host (`host[:port]`, or `*` for one DNS label, as in
 * `*.dkr.ecr.*.amazonaws.com`): requests per second and burst (default: the rate, at least 1).
 */
const budgetsSchema = byRegistryHost(
  z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9*.-]+)(?::\d{1,5})?$/, {
    message: 'expected a registry host "host[:port]" or a pattern like "*.gcr.io"',
  }),
  z
    .strictObject({ rps: z.number().positive(), burst: z.number().int().positive().optional() })
    .transform((b) => ({ rps: b.rps, burst: b.burst ?? Math.max(1, Math.ceil(b.rps)) })),
);

/** The whole configuration file; every key is optional. */
export const configSchema = z.strictObject({
  listen: listenAddress.default("127.0.0.1:8080"),
  // One word, as an `Authorization: Bearer` header carries it; the message never repeats it.
  apiToken: z.string().regex(API_TOKEN, { message: "expected a token without spaces" }).optional(),
  apiTokenFile: z.string().min(1).optional(),
  cache: storeUrl.optional(),
  replicaId: z.string().min(1).optional(),
  log: z
    .strictObject({
      level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
      format: z.enum(["json", "pretty"]).default("json"),
    })
    .prefault({}),
  registry: z
    .strictObject({
      rps: z.number().positive().default(200),
      burst: z.number().int().positive().default(125),
      platform: platform.optional(),
      insecureHosts: z.array(z.string().min(1)).default([]),
      caFiles: z.array(z.string().min(1)).default([]),
      mirrors: mirrorsSchema.default({}),
      budgets: budgetsSchema.default({}),
      trace: z.boolean().default(false),
      // Total deadlines (headers and body): of one request, and of a whole tag listing.
      requestTimeout: durationAtLeast(100).default(60_000),
      tagListTimeout: durationAtLeast(100).default(300_000),
    })
    .prefault({}),
  credentials: z
    .strictObject({
      dockerConfig: z.string().min(1).optional(),
      pullSecretDir: z.string().min(1).optional(),
      azureConfig: z.string().min(1).optional(),
      ecr: ecrSchema.prefault({}),
      require: z.array(z.enum(["ecr"])).default([]),
    })
    .prefault({}),
  images: z
    .strictObject({
      include: globs.default([]),
      exclude: globs.default([...DEFAULT_IMAGE_EXCLUDES]),
    })
    .prefault({}),
  timestampLabels: globs.default([]),
  repositories: z.array(repositorySchema).default([]),
  defaults: z
    .strictObject({
      tags: tagFilterSchema.optional(),
      interval: interval.optional(),
    })
    .prefault({}),
  sources: z
    .strictObject({
      file: z
        .strictObject({
          path: z.string().min(1),
          // The source polls at most every 100 ms whatever it is given; say so at load time.
          pollInterval: durationAtLeast(100).default(10_000),
        })
        .optional(),
      kubernetes: z
        .strictObject({
          enabled: z.boolean().default(true),
          kubeconfig: z.string().min(1).optional(),
          context: z.string().min(1).optional(),
          namespaces: z.array(z.string().min(1)).default([]),
          excludeNamespaces: z.array(z.string().min(1)).default([]),
        })
        .optional(),
    })
    .prefault({}),
  warmer: z
    .strictObject({
      interval: interval.default(60_000),
      // Fraction by which each tag's refresh interval is spread either way.
      refreshJitter: z.number().min(0).max(1).default(0.1),
      // A repository whose listing stays unchanged is listed up to this many times less often.
      maxIntervalFactor: z.number().int().min(1).max(1024).default(8),
      // Repositories scanned at once, and at most this many of one registry host.
      concurrency: z.number().int().min(1).max(256).default(16),
      perHostConcurrency: z.number().int().min(1).max(256).default(4),
      // Tags (last listed) of the repositories scanned at once: what scans hold in memory.
      maxTagsInFlight: z.number().int().min(1).default(60_000),
      // Each loop scan HEADs every tag not checked within half the interval (moved tags seen
      // without webhooks); off: tags follow their own refresh deadlines (Flux v1's cost).
      pollTags: z.boolean().default(true),
      // How long a repository lease lasts unless renewed: how long a replica that died on
      // another host keeps its repositories from the others (renewed every third of it).
      leaseTtl: durationAtLeast(3000).default(300_000),
      // regscan_warmer_tags_cached{repository}: a series per repository (10,000 at 10,000).
      tagsCachedByRepository: z.boolean().default(true),
    })
    .prefault({}),
  server: z
    .strictObject({
      maxBodyBytes: z.number().int().positive().default(65_536),
      rateLimit: z
        .strictObject({
          rps: z.number().positive().default(50),
          burst: z.number().int().positive().default(100),
        })
        .prefault({}),
      shutdownTimeout: duration.default(20_000),
      maxConnections: z.number().int().positive().default(1024),
      maxConnectionsPerClient: z.number().int().positive().default(64),
      maxHeavyRequests: z.number().int().positive().default(4),
      refreshMinGap: duration.default(5_000),
      // Webhook events for one repository this close together become one refresh.
      webhookWindow: duration.default(250),
      // The API on a thread of its own (with its own store connection), so that reads never
      // wait behind the warmer's work; not possible with a store in this process's memory.
      // Off by default: the thread's heap costs up to about 60 MiB of RSS (README: HTTP API).
      apiThread: z.boolean().default(false),
      // Repository answers shared with the other replicas through the store (gzip, one key
      // per repository read): a replica serves another's build instead of building it
      // again. Never with a store in this process's memory (README: HTTP API).
      sharedAnswers: z.boolean().default(true),
      // The warmer's thread's nice value (Linux): unset, 10 with the API on its own thread
      // and the process's own without. Never raised above the process's (README: HTTP API).
      warmerNice: z.number().int().min(0).max(19).optional(),
    })
    .prefault({}),
  webhooks: webhooksSchema.optional(),
});

/** The configuration as given (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** The effective configuration (defaults applied, durations in milliseconds). */
export type Config = z.output<typeof configSchema>;
/** One repository to watch, as written in the file. */
export type RepositoryConfig = Config["repositories"][number];
/** A tag filter, as written in the file. */
export type TagFilterConfig = z.output<typeof tagFilterSchema>;
