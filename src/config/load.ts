/**
 * Reads the effective configuration: the YAML file, then `REGSCAN_*` environment variables,
 * then command-line flags (flags win), validated by one schema. Every problem names where the
 * value came from (file and line, variable, or flag), the path, and what was expected.
 */
import { isMap, isNode, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import {
  BoundedFileError,
  CONFIG_FILE_MAX_BYTES,
  readBoundedTextFile,
  TOKEN_FILE_MAX_BYTES,
} from "../files/bounded-file.js";
import { type WebhookConfigInput, webhooksFromFlags } from "../server/webhooks/config.js";
import { isWebhookKind, WEBHOOK_KINDS } from "../server/webhooks/event.js";
import { ConfigError, type ConfigProblem } from "./errors.js";
import { API_TOKEN, type Config, configSchema } from "./schema.js";
import { flagAttribute, SETTINGS, type Setting } from "./settings.js";

/** Where the configuration comes from. */
export interface LoadConfigOptions {
  /** The YAML file, if any. */
  file?: string | undefined;
  /** The environment to read `REGSCAN_*` variables from (default: none). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Parsed command-line options keyed by commander attribute name (e.g. `insecureHost`). */
  flags?: Record<string, unknown> | undefined;
}

/** The effective configuration and where each overridden setting came from. */
export interface LoadedConfig {
  /** The validated configuration, defaults applied. */
  config: Config;
  /** The file it was read from, if any. */
  file: string | undefined;
  /** Dotted path -> `environment variable X` / `flag --x`, for settings not from the file. */
  origins: Map<string, string>;
}

type Raw = Record<string, unknown>;

/** Loads and validates the configuration; throws `ConfigError` naming every problem. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const problems: ConfigProblem[] = [];
  const origins = new Map<string, string>();
  let raw: Raw = {};
  let locate: (path: PropertyKey[]) => string | undefined = () => undefined;
  const fileLabel = opts.file ?? "configuration";

  if (opts.file !== undefined) {
    const file = opts.file;
    let text: string;
    try {
      text = await readBoundedTextFile(file, CONFIG_FILE_MAX_BYTES);
    } catch (err) {
      const reason =
        (err as NodeJS.ErrnoException).code === "ENOENT"
          ? "file not found"
          : err instanceof BoundedFileError
            ? err.reason
            : (err as Error).message;
      throw new ConfigError([
        { source: file, path: "", message: `cannot read configuration: ${reason}` },
      ]);
    }
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      throw new ConfigError(
        doc.errors.map((e) => {
          const pos = e.linePos?.[0];
          return {
            source: pos ? `${file}:${pos.line}:${pos.col}` : file,
            path: "",
            message: `not valid YAML: ${(e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "")}`,
          };
        }),
      );
    }
    // A key with nothing but comments under it reads as null: treat it as not set.
    const value: unknown = withoutNulls(doc.toJS());
    if (value === null || value === undefined) raw = {};
    else if (typeof value === "object" && !Array.isArray(value)) raw = value as Raw;
    else {
      throw new ConfigError([
        {
          source: file,
          path: "",
          message:
            "expected a mapping of settings at the top level (e.g. `listen: 127.0.0.1:8080`)",
        },
      ]);
    }
    locate = (path) => {
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n) as unknown[], true);
        if (isNode(node) && node.range) {
          const pos = lines.linePos(node.range[0]);
          return `${file}:${pos.line}`;
        }
        if (n === 0 && isMap(doc.contents) && doc.contents.range) return `${file}:1`;
      }
      return undefined;
    };
  }

  const env = opts.env ?? {};
  const hooks: WebhookFlags = { kinds: [], secrets: [] };
  for (const setting of SETTINGS) {
    const text = env[setting.env];
    if (setting.kind === "webhooks") {
      if (text !== undefined)
        addWebhookFlags(hooks, {
          setting,
          values: splitList(text),
          how: "environment variable",
        });
      continue;
    }
    if (text === undefined || text.trim() === "") continue;
    const source = `environment variable ${setting.env}`;
    const value = fromText(text, { setting, source, problems });
    if (value !== undefined) overlay({ raw, origins }, { setting, source }, value);
  }
  const flags = opts.flags ?? {};
  for (const setting of SETTINGS) {
    const given = flags[flagAttribute(setting.flag)];
    if (given === undefined) continue;
    if (setting.kind === "webhooks") {
      const values = (Array.isArray(given) ? given.map(String) : [String(given)]).flatMap(
        splitList,
      );
      addWebhookFlags(hooks, { setting, values, how: "flag" });
      continue;
    }
    const source = `flag --${setting.flag}`;
    const value = fromFlag(given, { setting, source, problems });
    if (value !== undefined) overlay({ raw, origins }, { setting, source }, value);
  }
  applyWebhookFlags({ raw, origins, problems }, hooks);
  if (problems.length > 0) throw new ConfigError(problems);

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const path = formatPath(issue.path);
        return {
          source: originOf(path, origins) ?? locate(issue.path) ?? fileLabel,
          path,
          message: describeIssue(issue),
        };
      }),
    );
  }
  const config = result.data;
  if (config.apiToken === undefined && config.apiTokenFile !== undefined) {
    try {
      config.apiToken = (
        await readBoundedTextFile(config.apiTokenFile, TOKEN_FILE_MAX_BYTES)
      ).trim();
    } catch (err) {
      // Only the reason or the errno code: never the file's content, which is a secret.
      const reason =
        err instanceof BoundedFileError
          ? err.reason
          : ((err as NodeJS.ErrnoException).code ?? "error");
      throw new ConfigError([
        {
          source: originOf("apiTokenFile", origins) ?? fileLabel,
          path: "apiTokenFile",
          message: `cannot read the API token file ${config.apiTokenFile}: ${reason}`,
        },
      ]);
    }
    if (!API_TOKEN.test(config.apiToken)) {
      throw new ConfigError([
        {
          source: originOf("apiTokenFile", origins) ?? fileLabel,
          path: "apiTokenFile",
          message: `the API token file ${config.apiTokenFile} ${config.apiToken === "" ? "is empty" : "must hold one token without spaces"}`,
        },
      ]);
    }
  }
  return { config, file: opts.file, origins };
}

/** `--webhook` / `REGSCAN_WEBHOOKS` kinds and `--webhook-secret` values, with their sources. */
interface WebhookFlags {
  kinds: Array<{ kind: string; source: string }>;
  secrets: Array<{ value: string; source: string }>;
}

/** The setting a list entry belongs to, and where its problems are reported. */
interface ConfigProblemPlace {
  source: string;
  /** The setting's path in the configuration (`registry.mirrors`). */
  path: string;
  problems: ConfigProblem[];
}

/** Where a value of one setting came from, and where its problems are reported. */
interface ValueSource {
  setting: Setting;
  /** `flag --x` or `environment variable REGSCAN_X`. */
  source: string;
  problems: ConfigProblem[];
}

/** Where overridden settings are written, with the source of each. */
interface OverlayTarget {
  raw: Raw;
  origins: Map<string, string>;
}

function addWebhookFlags(
  hooks: WebhookFlags,
  {
    setting,
    values,
    how,
  }: { setting: Setting; values: string[]; how: "flag" | "environment variable" },
): void {
  const source = how === "flag" ? `flag --${setting.flag}` : `environment variable ${setting.env}`;
  for (const value of values) {
    if (setting.flag === "webhook") hooks.kinds.push({ kind: value, source });
    else hooks.secrets.push({ value, source });
  }
}

/**
 * Adds receivers and secrets from flags and the environment to the file's `webhooks:`
 * (a kind turned on keeps its file settings). A malformed secret flag is reported by its
 * source only: it may hold the secret itself.
 */
function applyWebhookFlags(
  { raw, origins, problems }: OverlayTarget & { problems: ConfigProblem[] },
  hooks: WebhookFlags,
): void {
  if (hooks.kinds.length === 0 && hooks.secrets.length === 0) return;
  for (const { kind, source } of hooks.kinds) {
    if (isWebhookKind(kind)) continue;
    // Only a word that could be a mistyped kind is shown: anything else may be a secret.
    const shown = /^[a-z]{1,16}$/.test(kind) ? ` ${JSON.stringify(kind)}` : "";
    problems.push({
      source,
      path: "webhooks",
      message: `unknown webhook kind${shown}: expected one of ${WEBHOOK_KINDS.join(", ")}`,
    });
  }
  for (const { value, source } of hooks.secrets) {
    const { problems: found } = webhooksFromFlags(undefined, [], [value]);
    for (const message of found) problems.push({ source, path: "webhooks", message });
  }
  const { value } = webhooksFromFlags(
    raw.webhooks as WebhookConfigInput | undefined,
    hooks.kinds.map((k) => k.kind),
    hooks.secrets.map((s) => s.value),
  );
  raw.webhooks = value;
  for (const { kind, source } of hooks.kinds) {
    if (!origins.has(`webhooks.${kind}`)) origins.set(`webhooks.${kind}`, source);
  }
  for (const { value: flag, source } of hooks.secrets) {
    const kind = flag.slice(0, Math.max(0, flag.indexOf("=")));
    if (kind) origins.set(`webhooks.${kind}.secret`, source);
  }
}

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== "object") return value;
  // fromEntries defines keys where assignment to `__proto__` would set the prototype: such a
  // key is then an unknown setting (or a host), not settings smuggled in through a prototype.
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

function fromText(text: string, { setting, source, problems }: ValueSource): unknown {
  switch (setting.kind) {
    case "number":
    case "integer": {
      const n = Number(text.trim());
      return Number.isFinite(n) ? n : text;
    }
    case "boolean": {
      const t = text.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(t)) return true;
      if (["0", "false", "no", "off"].includes(t)) return false;
      problems.push({
        source,
        path: setting.path,
        message: `expected true or false, got ${JSON.stringify(text)}`,
      });
      return undefined;
    }
    case "list":
    case "images":
      return splitList(text);
    case "mirrors":
      return parseMirrors(splitList(text), { source, path: setting.path, problems });
    case "budgets":
      return parseBudgets(splitList(text), { source, path: setting.path, problems });
    default:
      return text;
  }
}

function fromFlag(given: unknown, { setting, source, problems }: ValueSource): unknown {
  const list = Array.isArray(given) ? given.map(String) : [String(given)];
  switch (setting.kind) {
    case "list":
    case "images":
      return list.flatMap(splitList);
    case "mirrors":
      return parseMirrors(list.flatMap(splitList), { source, path: setting.path, problems });
    case "budgets":
      return parseBudgets(list.flatMap(splitList), { source, path: setting.path, problems });
    case "boolean":
      return typeof given === "boolean"
        ? given
        : fromText(String(given), { setting, source, problems });
    default:
      return fromText(list[list.length - 1] ?? "", { setting, source, problems });
  }
}

function splitList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** `HOST=RPS[/BURST]` entries (`docker.io=5/10`); the schema checks the numbers. */
function parseBudgets(
  entries: string[],
  { source, path, problems }: ConfigProblemPlace,
): Record<string, { rps: unknown; burst?: unknown }> | undefined {
  const out = new Map<string, { rps: unknown; burst?: unknown }>();
  for (const entry of entries) {
    const m = /^([^=]+)=([^/]+)(?:\/(.+))?$/.exec(entry);
    if (m === null) {
      problems.push({
        source,
        path,
        message: `expected HOST=RPS[/BURST] (e.g. docker.io=5/10), got ${JSON.stringify(entry)}`,
      });
      return undefined;
    }
    const num = (t: string) => (Number.isFinite(Number(t)) && t.trim() !== "" ? Number(t) : t);
    out.set(m[1] as string, {
      rps: num(m[2] as string),
      // Undefined without a burst: the schema's default (the rate, at least 1) applies.
      burst: m[3] === undefined ? undefined : num(m[3]),
    });
  }
  return Object.fromEntries(out);
}

function parseMirrors(
  entries: string[],
  { source, path, problems }: ConfigProblemPlace,
): Record<string, string[]> | undefined {
  const out = new Map<string, string[]>();
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    if (eq <= 0 || eq === entry.length - 1) {
      problems.push({
        source,
        path,
        message: `expected HOST=MIRROR (e.g. docker.io=mirror.local:5000), got ${JSON.stringify(entry)}`,
      });
      return undefined;
    }
    const host = entry.slice(0, eq);
    out.set(host, [...(out.get(host) ?? []), entry.slice(eq + 1)]);
  }
  return Object.fromEntries(out);
}

/** Sets a value at the setting's path; `--image` / `REGSCAN_IMAGES` add to the file's list. */
function overlay(
  { raw, origins }: OverlayTarget,
  { setting, source }: Pick<ValueSource, "setting" | "source">,
  value: unknown,
): void {
  const keys = setting.path.split(".");
  let at: Raw = raw;
  for (const key of keys.slice(0, -1)) {
    const next = at[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) at[key] = {};
    at = at[key] as Raw;
  }
  const last = keys[keys.length - 1] ?? "";
  if (setting.kind === "images") {
    const existing = Array.isArray(at[last]) ? (at[last] as unknown[]) : [];
    const added = value as string[];
    for (let i = 0; i < added.length; i++)
      origins.set(`${setting.path}[${existing.length + i}]`, source);
    at[last] = [...existing, ...added];
    return;
  }
  at[last] = value;
  origins.set(setting.path, source);
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

function originOf(path: string, origins: Map<string, string>): string | undefined {
  let best: string | undefined;
  let bestLength = -1;
  for (const [prefix, source] of origins) {
    const matches =
      path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
    if (matches && prefix.length > bestLength) {
      best = source;
      bestLength = prefix.length;
    }
  }
  return best;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    return `unknown setting${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")} (see regscan.example.yaml for every setting)`;
  }
  return issue.message.replace(/^Invalid input: /, "");
}
