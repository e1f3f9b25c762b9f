/**
 * Reads an image config blob (Docker or OCI) for what regscan reports: creation time,
 * platform and every label (`config.Labels`, else the older `container_config.Labels`).
 */
import type { Labels } from "../../image/info.js";
import { withoutUndefined } from "../../without-undefined.js";
import { InvalidImageConfigError, type RegistryErrorContext, TooLargeError } from "../errors.js";
import { type Fail, isObject, optionalString, parseJsonObject } from "./json.js";

/** Config blobs larger than this are refused (real ones are a few KiB). */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** What regscan takes from an image config. */
export interface ImageConfigSummary {
  createdAt?: Date;
  architecture?: string;
  os?: string;
  variant?: string;
  osVersion?: string;
  labels: Labels;
}

// RFC 3339 as Go writes it (fractional seconds of any length, `Z` or an offset).
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * A creation time from a config or schema 1 history entry. A string that is not RFC 3339,
 * and Go's zero time (`0001-01-01T00:00:00Z`, which means "unset"), give `undefined`
 * rather than an error: one odd field should not hide the rest of the image. A value of
 * the wrong JSON type is malformed.
 */
export function parseCreated(value: unknown, fail: Fail): Date | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") return fail("created is not a string");
  if (!RFC3339.test(value)) return undefined;
  const ms = Date.parse(value.replace(" ", "T"));
  if (Number.isNaN(ms) || new Date(ms).getUTCFullYear() <= 1) return undefined;
  return new Date(ms);
}

/** A labels object: `null` or absent is empty, non-string values are malformed. */
function labelsOf(value: unknown, where: string, fail: Fail): Labels | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) return fail(`${where} is not an object`);
  const entries: [string, string][] = [];
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string")
      return fail(`${where}[${JSON.stringify(k.slice(0, 100))}] is not a string`);
    entries.push([k, v]);
  }
  // fromEntries defines own properties, so a `__proto__` key stays a plain label.
  return Object.fromEntries(entries);
}

/**
 * Labels as Docker shows them: `config.Labels` when it has any, else
 * `container_config.Labels` (older builders put them only there), else none.
 */
export function labelsFromConfig(config: unknown, containerConfig: unknown, fail: Fail): Labels {
  const fromConfig = isObject(config) ? labelsOf(config.Labels, "config.Labels", fail) : undefined;
  if (fromConfig && Object.keys(fromConfig).length > 0) return fromConfig;
  const fromContainer = isObject(containerConfig)
    ? labelsOf(containerConfig.Labels, "container_config.Labels", fail)
    : undefined;
  return fromContainer ?? fromConfig ?? {};
}

/**
 * Decodes a config blob. Throws `TooLargeError` over `MAX_CONFIG_BYTES` and
 * `InvalidImageConfigError` for anything malformed; nothing else.
 */
export function decodeImageConfig(
  bytes: Uint8Array,
  ctx: RegistryErrorContext = {},
): ImageConfigSummary {
  if (bytes.byteLength > MAX_CONFIG_BYTES) {
    throw new TooLargeError({
      ...ctx,
      what: "config blob",
      limit: MAX_CONFIG_BYTES,
      size: bytes.byteLength,
    });
  }
  const fail: Fail = (reason) => {
    throw new InvalidImageConfigError({ ...ctx, reason });
  };
  const obj = parseJsonObject(bytes, fail);
  const createdAt = parseCreated(obj.created, fail);
  const architecture = optionalString(obj, { key: "architecture", where: "image config", fail });
  const os = optionalString(obj, { key: "os", where: "image config", fail });
  const variant = optionalString(obj, { key: "variant", where: "image config", fail });
  const osVersion = optionalString(obj, { key: "os.version", where: "image config", fail });
  const labels = labelsFromConfig(obj.config, obj.container_config, fail);
  return withoutUndefined<ImageConfigSummary>({
    createdAt,
    architecture,
    os,
    variant,
    osVersion,
    labels,
  });
}
