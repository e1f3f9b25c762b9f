/**
 * The schema of regscan's configuration file (YAML), validated with zod. The same schema
 * checks the values that come from environment variables and command-line flags, so every
 * setting is validated the same way wherever it was given.
 */
import { z } from "zod";
import { parseDuration } from "./duration.js";

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

const platform = z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, {
  message: 'expected a platform "os/arch" or "os/arch/variant", e.g. "linux/arm64"',
});

const listenAddress = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/, {
  message: 'expected "host:port" (e.g. "127.0.0.1:8080", ":8080", "[::1]:8080")',
});

const globs = z.array(z.string().min(1));

/** Which tags of a repository to keep, applied before any metadata is fetched. */
export const tagFilterSchema = z.strictObject({
  /** Globs or `/regular expressions/`; a tag must match one (all tags when empty). */
  include: globs.optional(),
  /** Globs or `/regular expressions/`; a tag matching one is dropped. */
  exclude: globs.optional(),
  /** Keep at most this many tags (the newest by `order`). */
  max: z.number().int().positive().optional(),
  /** How "newest" is decided for `max`: by semantic version, or by the registry's order. */
  order: z.enum(["semver", "listing"]).optional(),
});

/** A repository is a name, or a name with options. */
const repositorySchema = z.preprocess(
  (v) => (typeof v === "string" ? { name: v } : v),
  z.strictObject({
    /** An image repository, e.g. `alpine`, `ghcr.io/org/app`, `localhost:5000/team/app`. */
    name: z.string().min(1),
    tags: tagFilterSchema.optional(),
    platform: platform.optional(),
    interval: duration.optional(),
  }),
);

const ecrSchema = z.strictObject({
  regions: z.array(z.string().min(1)).default([]),
  includeIds: z
    .array(z.string().regex(/^\d{12}$/, { message: "expected a 12-digit AWS account ID" }))
    .default([]),
  excludeIds: z
    .array(z.string().regex(/^\d{12}$/, { message: "expected a 12-digit AWS account ID" }))
    .optional(),
});

/** The whole configuration file; every key is optional. */
export const configSchema = z.strictObject({
  listen: listenAddress.default("127.0.0.1:8080"),
  apiToken: z.string().min(1).optional(),
  apiTokenFile: z.string().min(1).optional(),
  cache: z.string().min(1).optional(),
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
      mirrors: z.record(z.string().min(1), z.array(z.string().min(1))).default({}),
      trace: z.boolean().default(false),
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
      exclude: globs.default(["k8s.gcr.io/*"]),
    })
    .prefault({}),
  timestampLabels: globs.default([]),
  repositories: z.array(repositorySchema).default([]),
  defaults: z
    .strictObject({
      tags: tagFilterSchema.optional(),
      interval: duration.optional(),
    })
    .prefault({}),
  sources: z
    .strictObject({
      file: z
        .strictObject({
          path: z.string().min(1),
          pollInterval: duration.default(10_000),
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
      interval: duration.default(60_000),
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
    })
    .prefault({}),
});

/** The configuration as given (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** The effective configuration (defaults applied, durations in milliseconds). */
export type Config = z.output<typeof configSchema>;
/** One repository to watch, as written in the file. */
export type RepositoryConfig = Config["repositories"][number];
/** A tag filter, as written in the file. */
export type TagFilterConfig = z.output<typeof tagFilterSchema>;
