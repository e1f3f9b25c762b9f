/**
 * Creation times written into image labels (`org.opencontainers.image.created`,
 * `org.label-schema.build-date`), which are often more meaningful than the config's
 * `created` (reproducible builds set that to 1970). A malformed label is reported beside
 * the result and never costs the rest of the image's info, as in Flux v1.
 */
import { RegscanError } from "../errors.js";
import type { ImageInfo, Labels } from "./info.js";
import { parseRfc3339 } from "./rfc3339.js";

/** The OCI annotation / label for the image's creation time (RFC 3339). */
export const OCI_CREATED_LABEL = "org.opencontainers.image.created";
/** The older Label Schema label for the build time (RFC 3339). */
export const LABEL_SCHEMA_BUILD_DATE_LABEL = "org.label-schema.build-date";
/**
 * The order in which timestamp labels are preferred, as Flux v1's timestamp-label
 * decorator chose: the OCI label first, then Label Schema's.
 */
export const LABEL_TIMESTAMP_PRIORITY = [OCI_CREATED_LABEL, LABEL_SCHEMA_BUILD_DATE_LABEL] as const;

const SHOWN_VALUE_MAX = 100;

/** A timestamp label whose value is not an RFC 3339 date-time. */
export class LabelTimestampFormatError extends RegscanError {
  readonly code = "LABEL_TIMESTAMP_FORMAT";
  constructor(
    /** The label's name. */
    readonly label: string,
    /** The label's value as found. */
    readonly value: string,
  ) {
    const shown = value.length > SHOWN_VALUE_MAX ? `${value.slice(0, SHOWN_VALUE_MAX)}...` : value;
    super(`label ${label} is not an RFC 3339 timestamp: ${JSON.stringify(shown)}`);
  }
}

/** The timestamps found in an image's labels, and the labels that were malformed. */
export interface LabelTimestamps {
  /** From `org.opencontainers.image.created`. */
  created?: Date;
  /** From `org.label-schema.build-date`. */
  buildDate?: Date;
  /** One error per timestamp label present but malformed. */
  errors: LabelTimestampFormatError[];
}

/** Reads both timestamp labels; a malformed one is left out and reported in `errors`. */
export function readLabelTimestamps(labels: Labels): LabelTimestamps {
  const out: LabelTimestamps = { errors: [] };
  const created = readLabel(labels, OCI_CREATED_LABEL, out.errors);
  if (created !== undefined) out.created = created;
  const buildDate = readLabel(labels, LABEL_SCHEMA_BUILD_DATE_LABEL, out.errors);
  if (buildDate !== undefined) out.buildDate = buildDate;
  return out;
}

function readLabel(
  labels: Labels,
  label: string,
  errors: LabelTimestampFormatError[],
): Date | undefined {
  if (!Object.hasOwn(labels, label)) return undefined;
  const value = labels[label];
  if (value === undefined) return undefined;
  const date = parseRfc3339(value.trim());
  if (date === undefined) errors.push(new LabelTimestampFormatError(label, value));
  return date;
}

/** Options for choosing an image's creation time. */
export interface CreationTimeOptions {
  /** Use a timestamp label, when there is a well-formed one, before the config's time. */
  preferLabels: boolean;
}

/**
 * The best creation time of an image: with `preferLabels`, the first well-formed label of
 * LABEL_TIMESTAMP_PRIORITY, else the config's `createdAt`; without, `createdAt` alone.
 */
export function bestCreationTime(info: ImageInfo, options: CreationTimeOptions): Date | undefined {
  if (options.preferLabels) {
    const found = readLabelTimestamps(info.labels);
    const fromLabels = found.created ?? found.buildDate;
    if (fromLabels !== undefined) return fromLabels;
  }
  return info.createdAt;
}

/**
 * What the cache's "prefer timestamp labels" decorator applies to each image: a copy whose
 * `createdAt` is the best label time when there is one (the info itself otherwise), and
 * the malformed labels to report.
 */
export function preferLabelTimestamps(info: ImageInfo): {
  info: ImageInfo;
  errors: LabelTimestampFormatError[];
} {
  const found = readLabelTimestamps(info.labels);
  const fromLabels = found.created ?? found.buildDate;
  if (fromLabels === undefined) return { info, errors: found.errors };
  return { info: { ...info, createdAt: fromLabels }, errors: found.errors };
}
