/**
 * Creation times written into image labels and OCI annotations
 * (`org.opencontainers.image.created`, `org.label-schema.build-date`), which are often more
 * meaningful than the config's `created` (reproducible builds set that to 1970). A malformed
 * one is reported beside the result and never costs the rest of the image's info, as in
 * Flux v1.
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

/**
 * Where a timestamp is read from. The config's labels come first, so an image with a
 * timestamp label gets the time Flux v1 gave it (Flux read labels only); the image
 * manifest's annotations next, then the index's.
 */
export type TimestampSource = "label" | "annotation" | "index annotation";

const SHOWN_VALUE_MAX = 100;

/** A timestamp label (or annotation) whose value is not an RFC 3339 date-time. */
export class LabelTimestampFormatError extends RegscanError {
  readonly code = "LABEL_TIMESTAMP_FORMAT";
  /** The label's (or annotation's) name. */
  readonly label: string;
  /** The value as found. */
  readonly value: string;
  /** Where it was found. */
  readonly source: TimestampSource;

  /** `source` defaults to `label`. */
  constructor(found: { label: string; value: string; source?: TimestampSource | undefined }) {
    const { label, value, source = "label" } = found;
    const shown = value.length > SHOWN_VALUE_MAX ? `${value.slice(0, SHOWN_VALUE_MAX)}...` : value;
    super(`${source} ${label} is not an RFC 3339 timestamp: ${JSON.stringify(shown)}`);
    this.label = label;
    this.value = value;
    this.source = source;
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

/**
 * Reads both timestamp labels of one map (`source` says which, for the errors); a malformed
 * one is left out and reported in `errors`.
 */
export function readLabelTimestamps(
  labels: Labels,
  source: TimestampSource = "label",
): LabelTimestamps {
  const out: LabelTimestamps = { errors: [] };
  const created = readLabel({ labels, label: OCI_CREATED_LABEL, source, errors: out.errors });
  if (created !== undefined) out.created = created;
  const buildDate = readLabel({
    labels,
    label: LABEL_SCHEMA_BUILD_DATE_LABEL,
    source,
    errors: out.errors,
  });
  if (buildDate !== undefined) out.buildDate = buildDate;
  return out;
}

/** `label`'s timestamp in `labels`; a malformed one is pushed onto `errors` instead. */
function readLabel(read: {
  labels: Labels;
  label: string;
  source: TimestampSource;
  errors: LabelTimestampFormatError[];
}): Date | undefined {
  const { labels, label, source, errors } = read;
  if (!Object.hasOwn(labels, label)) return undefined;
  const value = labels[label];
  if (value === undefined) return undefined;
  const date = parseRfc3339(value.trim());
  if (date === undefined) errors.push(new LabelTimestampFormatError({ label, value, source }));
  return date;
}

/** The timestamp an image's labels and annotations give, where it came from, and the malformed ones. */
export interface ImageLabelTimestamp {
  /** The first well-formed timestamp (see `findLabelTimestamp`). */
  time?: Date;
  /** Where `time` was found. */
  source?: TimestampSource;
  /** Which label or annotation gave `time`. */
  label?: string;
  /** Every malformed timestamp label and annotation, in every source. */
  errors: LabelTimestampFormatError[];
}

/**
 * The timestamp of an image from its labels, else its manifest's annotations, else its
 * index's (see TimestampSource); within each, the first well-formed one of
 * LABEL_TIMESTAMP_PRIORITY. Every source is read, so that each malformed value is reported.
 */
export function findLabelTimestamp(info: ImageInfo): ImageLabelTimestamp {
  const out: ImageLabelTimestamp = { errors: [] };
  const sources: [Labels | undefined, TimestampSource][] = [
    [info.labels, "label"],
    [info.annotations, "annotation"],
    [info.indexAnnotations, "index annotation"],
  ];
  for (const [map, source] of sources) {
    if (map === undefined) continue;
    const found = readLabelTimestamps(map, source);
    out.errors.push(...found.errors);
    if (out.time !== undefined) continue;
    const [label, time] =
      found.created !== undefined
        ? [OCI_CREATED_LABEL, found.created]
        : [LABEL_SCHEMA_BUILD_DATE_LABEL, found.buildDate];
    if (time === undefined) continue;
    out.time = time;
    out.source = source;
    out.label = label;
  }
  return out;
}

/** Options for choosing an image's creation time. */
export interface CreationTimeOptions {
  /**
   * Use a timestamp label or annotation, when there is a well-formed one, before the
   * config's time.
   */
  preferLabels: boolean;
}

/**
 * The best creation time of an image: with `preferLabels`, the timestamp
 * `findLabelTimestamp` finds (labels, then annotations), else the config's `createdAt`;
 * without, `createdAt` alone.
 */
export function bestCreationTime(info: ImageInfo, options: CreationTimeOptions): Date | undefined {
  if (options.preferLabels) {
    const fromLabels = findLabelTimestamp(info).time;
    if (fromLabels !== undefined) return fromLabels;
  }
  return info.createdAt;
}

/**
 * What the cache's "prefer timestamp labels" decorator applies to each image: a copy whose
 * `createdAt` is the timestamp `findLabelTimestamp` finds, when there is one (the info
 * itself otherwise), and the malformed labels and annotations to report.
 */
export function preferLabelTimestamps(info: ImageInfo): {
  info: ImageInfo;
  errors: LabelTimestampFormatError[];
} {
  const found = findLabelTimestamp(info);
  if (found.time === undefined) return { info, errors: found.errors };
  return { info: { ...info, createdAt: found.time }, errors: found.errors };
}
