/**
 * The JSON forms of ImageInfo, ImageEntry and RepositoryMetadata: plain JSON-safe objects
 * with times as RFC 3339 strings, absent values omitted and references as canonical
 * strings. Decoding validates everything and throws InvalidImageDataError naming what was
 * wrong, which a cache treats as a miss. The forms and encoders live in json-form.ts (which
 * does not load zod) and are re-exported here.
 */
import { z } from "zod";
import { RegscanError } from "../errors.js";
import type { ImageEntry, ImageInfo, Labels, RepositoryMetadata } from "./info.js";
import { copyRecord, platformToJSON } from "./json-form.js";
import { InvalidImageRefError, parseImageRef } from "./ref.js";
import { parseRfc3339 } from "./rfc3339.js";

export {
  type ImageEntryJSON,
  type ImageInfoJSON,
  imageEntryToJSON,
  imageInfoToJSON,
  type PlatformJSON,
  type RepositoryMetadataJSON,
  repositoryMetadataToJSON,
} from "./json-form.js";

/** Thrown when JSON that should describe an image or a repository does not. */
export class InvalidImageDataError extends RegscanError {
  readonly code = "INVALID_IMAGE_DATA";
  constructor(
    /** What was being decoded, e.g. `ImageInfo`. */
    readonly what: string,
    /** Each problem as `path: message`. */
    readonly problems: string[],
  ) {
    super(`invalid ${what} data: ${summarise(problems)}`);
  }
}

function summarise(problems: string[]): string {
  const shown = problems.slice(0, 5).join("; ");
  return problems.length > 5 ? `${shown}; and ${problems.length - 5} more` : shown;
}

const rfc3339 = z.string().refine((s) => parseRfc3339(s) !== undefined, {
  message: "not an RFC 3339 date-time",
});

const imageRef = z.string().refine(
  (s) => {
    try {
      parseImageRef(s);
      return true;
    } catch (error) {
      if (error instanceof InvalidImageRefError) return false;
      throw error;
    }
  },
  { message: "not a valid image reference" },
);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// z.record would drop a key named `__proto__` (a valid label and even a valid tag), so
// these two objects are checked as they are and copied by copyRecord.
const labelsSchema = z.custom<Labels>(
  (v) => isPlainObject(v) && Object.values(v).every((x) => typeof x === "string"),
  { message: "must be an object of strings" },
);
const objectSchema = z.custom<Record<string, unknown>>(isPlainObject, {
  message: "must be an object",
});

const platformSchema = z.object({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
  osVersion: z.string().optional(),
});

const imageInfoSchema = z.object({
  ref: imageRef,
  digest: z.string().min(1),
  platformDigest: z.string().min(1).optional(),
  imageID: z.string().min(1).optional(),
  mediaType: z.string(),
  createdAt: rfc3339.optional(),
  labels: labelsSchema,
  // Absent in JSON written before annotations were reported: none.
  annotations: labelsSchema.optional(),
  indexAnnotations: labelsSchema.optional(),
  platform: platformSchema.optional(),
  platforms: z.array(platformSchema),
  lastFetched: rfc3339.optional(),
});

const imageEntrySchema = z
  .object({ info: imageInfoSchema.optional(), excludedReason: z.string().min(1).optional() })
  .refine((e) => (e.info === undefined) !== (e.excludedReason === undefined), {
    message: "must have exactly one of info and excludedReason",
  });

const repositoryMetadataSchema = z.object({ tags: z.array(z.string()), images: objectSchema });

function problemsOf(error: z.ZodError, prefix: PropertyKey[] = []): string[] {
  return error.issues.map(
    (i) => `${[...prefix, ...i.path].map(String).join(".") || "(root)"}: ${i.message}`,
  );
}

function decode<S extends z.ZodType>(what: string, schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new InvalidImageDataError(what, problemsOf(result.error));
  return result.data;
}

function infoFromParsed(j: z.output<typeof imageInfoSchema>): ImageInfo {
  const info: ImageInfo = {
    ref: parseImageRef(j.ref),
    digest: j.digest,
    mediaType: j.mediaType,
    labels: copyRecord(j.labels),
    annotations: copyRecord(j.annotations ?? {}),
    platforms: j.platforms.map(platformToJSON),
  };
  if (j.indexAnnotations !== undefined) info.indexAnnotations = copyRecord(j.indexAnnotations);
  if (j.platformDigest !== undefined) info.platformDigest = j.platformDigest;
  if (j.imageID !== undefined) info.imageID = j.imageID;
  // The schema checked both dates, so they parse.
  const createdAt = j.createdAt === undefined ? undefined : parseRfc3339(j.createdAt);
  if (createdAt !== undefined) info.createdAt = createdAt;
  if (j.platform !== undefined) info.platform = platformToJSON(j.platform);
  const lastFetched = j.lastFetched === undefined ? undefined : parseRfc3339(j.lastFetched);
  if (lastFetched !== undefined) info.lastFetched = lastFetched;
  return info;
}

/** Reads an image's info from its JSON form; throws InvalidImageDataError. */
export function imageInfoFromJSON(value: unknown): ImageInfo {
  return infoFromParsed(decode("ImageInfo", imageInfoSchema, value));
}

/** Reads an entry from its JSON form; throws InvalidImageDataError. */
export function imageEntryFromJSON(value: unknown): ImageEntry {
  const e = decode("ImageEntry", imageEntrySchema, value);
  if (e.info !== undefined) return { info: infoFromParsed(e.info) };
  return { excludedReason: e.excludedReason ?? "" };
}

/** Reads a repository's metadata from its JSON form; throws InvalidImageDataError. */
export function repositoryMetadataFromJSON(value: unknown): RepositoryMetadata {
  const j = decode("RepositoryMetadata", repositoryMetadataSchema, value);
  const images = new Map<string, ImageInfo>();
  const problems: string[] = [];
  for (const [tag, raw] of Object.entries(j.images)) {
    const info = imageInfoSchema.safeParse(raw);
    if (info.success) images.set(tag, infoFromParsed(info.data));
    else problems.push(...problemsOf(info.error, ["images", tag]));
  }
  if (problems.length > 0) throw new InvalidImageDataError("RepositoryMetadata", problems);
  return { tags: j.tags, images };
}
