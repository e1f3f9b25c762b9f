/**
 * Turns manifest bytes and their `Content-Type` into a typed value: an index (with platform
 * descriptors), an image manifest (config and layers), or a Docker schema 1 manifest (whose
 * creation time and labels live in `history[0].v1Compatibility`).
 */
import type { Labels, Platform } from "../../image/info.js";
import { withoutUndefined } from "../../without-undefined.js";
import { isDigest } from "../digest.js";
import {
  InvalidManifestError,
  type RegistryErrorContext,
  TooLargeError,
  UnsupportedMediaTypeError,
} from "../errors.js";
import { labelsFromConfig, parseCreated } from "./config.js";
import { type Fail, isObject, optionalString, parseJsonObject } from "./json.js";
import {
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA1_SIGNED,
  isGenericMediaType,
  isImageManifestMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSchema1MediaType,
  normaliseMediaType,
  OCI_INDEX,
  OCI_MANIFEST,
} from "./media-types.js";

/** Manifests larger than this are refused (the limit distribution itself uses). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** A content descriptor (of a manifest, config or layer). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Labels;
  /** The platform, on an index's entries. */
  platform?: Platform;
  artifactType?: string;
}

/** An OCI image index or Docker manifest list. */
export interface DecodedIndex {
  kind: "index";
  mediaType: string;
  manifests: Descriptor[];
  annotations: Labels;
}

/** An OCI image manifest or Docker schema 2 manifest. */
export interface DecodedImageManifest {
  kind: "image";
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations: Labels;
  artifactType?: string;
}

/** A Docker schema 1 manifest, signed or not. */
export interface DecodedSchema1 {
  kind: "schema1";
  mediaType: string;
  signed: boolean;
  name?: string;
  tag?: string;
  architecture?: string;
  os?: string;
  createdAt?: Date;
  labels: Labels;
}

/** Any manifest regscan decodes. */
export type DecodedManifest = DecodedIndex | DecodedImageManifest | DecodedSchema1;

/** `obj[key]` as a non-empty string; anything else fails, naming `where`. */
function requiredString(
  obj: Record<string, unknown>,
  field: { key: string; where: string; fail: Fail },
): string {
  const { key, where, fail } = field;
  const v = obj[key];
  if (typeof v !== "string" || v === "") return fail(`${where}.${key} is missing or not a string`);
  return v;
}

function annotationsOf(value: unknown, where: string, fail: Fail): Labels {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) return fail(`${where}.annotations is not an object`);
  const entries: [string, string][] = [];
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") return fail(`${where}.annotations values must be strings`);
    entries.push([k, v]);
  }
  return Object.fromEntries(entries);
}

function platformOf(value: unknown, where: string, fail: Fail): Platform | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) return fail(`${where}.platform is not an object`);
  const os = requiredString(value, { key: "os", where: `${where}.platform`, fail });
  const architecture = requiredString(value, {
    key: "architecture",
    where: `${where}.platform`,
    fail,
  });
  const variant = optionalString(value, { key: "variant", where: `${where}.platform`, fail });
  const osVersion = optionalString(value, { key: "os.version", where: `${where}.platform`, fail });
  return withoutUndefined<Platform>({ os, architecture, variant, osVersion });
}

function descriptorOf(value: unknown, where: string, fail: Fail): Descriptor {
  if (!isObject(value)) return fail(`${where} is not an object`);
  const mediaType = requiredString(value, { key: "mediaType", where, fail });
  const digest = requiredString(value, { key: "digest", where, fail });
  if (!isDigest(digest)) return fail(`${where}.digest is not a supported digest`);
  const size = value.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    return fail(`${where}.size is not a non-negative integer`);
  }
  const platform = platformOf(value.platform, where, fail);
  const artifactType = optionalString(value, { key: "artifactType", where, fail });
  return withoutUndefined<Descriptor>({
    mediaType,
    digest,
    size,
    annotations: annotationsOf(value.annotations, where, fail),
    platform,
    artifactType,
  });
}

function descriptorsOf(value: unknown, where: string, fail: Fail): Descriptor[] {
  if (!Array.isArray(value)) return fail(`${where} is not an array`);
  return value.map((d, i) => descriptorOf(d, `${where}[${i}]`, fail));
}

/** Which kind a body looks like, from its own fields. */
function mediaTypeFromBody(obj: Record<string, unknown>, fail: Fail): string {
  if (typeof obj.mediaType === "string" && obj.mediaType !== "") return obj.mediaType;
  if (obj.schemaVersion === 1) {
    return Array.isArray(obj.signatures) ? DOCKER_SCHEMA1_SIGNED : DOCKER_SCHEMA1;
  }
  if (obj.schemaVersion === 2) {
    // OCI made `mediaType` optional at first; the shape tells an index from a manifest.
    if (Array.isArray(obj.manifests)) return OCI_INDEX;
    if (isObject(obj.config)) return OCI_MANIFEST;
  }
  return fail("cannot tell which kind of manifest this is");
}

function kindOf(mediaType: string): DecodedManifest["kind"] | undefined {
  if (isIndexMediaType(mediaType)) return "index";
  if (isImageManifestMediaType(mediaType)) return "image";
  if (isSchema1MediaType(mediaType)) return "schema1";
  return undefined;
}

function decodeIndex(mediaType: string, obj: Record<string, unknown>, fail: Fail): DecodedIndex {
  if (obj.schemaVersion !== 2) return fail("schemaVersion must be 2");
  return {
    kind: "index",
    mediaType,
    manifests: descriptorsOf(obj.manifests, "manifests", fail),
    annotations: annotationsOf(obj.annotations, "index", fail),
  };
}

function decodeImage(
  mediaType: string,
  obj: Record<string, unknown>,
  fail: Fail,
): DecodedImageManifest {
  if (obj.schemaVersion !== 2) return fail("schemaVersion must be 2");
  const artifactType = optionalString(obj, { key: "artifactType", where: "manifest", fail });
  return withoutUndefined<DecodedImageManifest>({
    kind: "image",
    mediaType,
    config: descriptorOf(obj.config, "config", fail),
    layers: obj.layers === undefined ? [] : descriptorsOf(obj.layers, "layers", fail),
    annotations: annotationsOf(obj.annotations, "manifest", fail),
    artifactType,
  });
}

function decodeSchema1(
  mediaType: string,
  obj: Record<string, unknown>,
  fail: Fail,
): DecodedSchema1 {
  if (obj.schemaVersion !== 1) return fail("schemaVersion must be 1");
  const history = obj.history;
  if (!Array.isArray(history)) return fail("history is not an array");
  const name = optionalString(obj, { key: "name", where: "manifest", fail });
  const tag = optionalString(obj, { key: "tag", where: "manifest", fail });
  let architecture = optionalString(obj, { key: "architecture", where: "manifest", fail });
  let os: string | undefined;
  let createdAt: Date | undefined;
  let labels: Labels = {};
  const first: unknown = history[0];
  if (first !== undefined) {
    if (!isObject(first)) return fail("history[0] is not an object");
    const compat = first.v1Compatibility;
    if (typeof compat !== "string") return fail("history[0].v1Compatibility is not a string");
    const v1 = parseJsonObject(new TextEncoder().encode(compat), (reason) =>
      fail(`history[0].v1Compatibility is ${reason}`),
    );
    createdAt = parseCreated(v1.created, fail);
    os = optionalString(v1, { key: "os", where: "v1Compatibility", fail });
    architecture ??= optionalString(v1, { key: "architecture", where: "v1Compatibility", fail });
    labels = labelsFromConfig(v1.config, v1.container_config, fail);
  }
  return withoutUndefined<DecodedSchema1>({
    kind: "schema1",
    mediaType,
    signed: Array.isArray(obj.signatures),
    name,
    tag,
    architecture,
    os,
    createdAt,
    labels,
  });
}

/**
 * Decodes a manifest. The `Content-Type` decides its kind; when it is missing or generic
 * (`application/json`, ...) the body does (`mediaType`, else its shape). Throws
 * `TooLargeError` over `MAX_MANIFEST_BYTES`, `UnsupportedMediaTypeError` for a media type
 * regscan does not decode, and `InvalidManifestError` for anything malformed (including a
 * body whose own `mediaType` names another kind than its `Content-Type`); nothing else.
 */
export function decodeManifest(
  bytes: Uint8Array,
  contentType?: string | null,
  ctx: RegistryErrorContext = {},
): DecodedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new TooLargeError({
      ...ctx,
      what: "manifest",
      limit: MAX_MANIFEST_BYTES,
      size: bytes.byteLength,
    });
  }
  const header = normaliseMediaType(contentType);
  // An unknown specific type is refused before parsing: it may not even be JSON.
  if (!isGenericMediaType(header) && !isManifestMediaType(header)) {
    throw new UnsupportedMediaTypeError({ ...ctx, mediaType: header });
  }
  const fail: Fail = (reason) => {
    throw new InvalidManifestError({ ...ctx, reason });
  };
  const obj = parseJsonObject(bytes, fail);
  let mediaType: string;
  if (isManifestMediaType(header)) {
    mediaType = header;
    const own = obj.mediaType;
    if (typeof own === "string" && isManifestMediaType(own) && kindOf(own) !== kindOf(header)) {
      return fail(`body says ${normaliseMediaType(own)} but Content-Type says ${header}`);
    }
  } else {
    mediaType = normaliseMediaType(mediaTypeFromBody(obj, fail));
    if (!isManifestMediaType(mediaType)) {
      throw new UnsupportedMediaTypeError({ ...ctx, mediaType });
    }
  }
  switch (kindOf(mediaType)) {
    case "index":
      return decodeIndex(mediaType, obj, fail);
    case "image":
      return decodeImage(mediaType, obj, fail);
    default:
      return decodeSchema1(mediaType, obj, fail);
  }
}
