/**
 * The manifest and config media types regscan understands, and the `Accept` header that
 * asks a registry for any of them (newest formats first).
 */

/** OCI image index (multi-platform). */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** Docker manifest list (multi-platform). */
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker image manifest, schema 2. */
export const DOCKER_SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker image manifest, schema 1, unsigned. */
export const DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json";
/** Docker image manifest, schema 1, signed (JWS). */
export const DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/** OCI image config blob. */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** Docker image config blob. */
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";

/** Every manifest media type regscan decodes, in order of preference. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  OCI_INDEX,
  DOCKER_MANIFEST_LIST,
  OCI_MANIFEST,
  DOCKER_SCHEMA2,
  DOCKER_SCHEMA1_SIGNED,
  DOCKER_SCHEMA1,
];

/** The `Accept` header for manifest `GET` and `HEAD` requests. */
export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(", ");

/** Content types that say nothing about which manifest this is, so the body decides. */
const GENERIC_TYPES: ReadonlySet<string> = new Set([
  "",
  "application/json",
  "text/plain",
  "application/octet-stream",
  "binary/octet-stream",
]);

/** A `Content-Type` reduced to its media type: parameters dropped, lower-cased, trimmed. */
export function normaliseMediaType(contentType: string | null | undefined): string {
  if (!contentType) return "";
  return (contentType.split(";")[0] ?? "").trim().toLowerCase();
}

/** Whether a content type is missing or generic, so that the body must tell the type. */
export function isGenericMediaType(contentType: string | null | undefined): boolean {
  return GENERIC_TYPES.has(normaliseMediaType(contentType));
}

/** An index: OCI image index or Docker manifest list. */
export function isIndexMediaType(mediaType: string): boolean {
  const t = normaliseMediaType(mediaType);
  return t === OCI_INDEX || t === DOCKER_MANIFEST_LIST;
}

/** A single-image manifest with a config descriptor: OCI manifest or Docker schema 2. */
export function isImageManifestMediaType(mediaType: string): boolean {
  const t = normaliseMediaType(mediaType);
  return t === OCI_MANIFEST || t === DOCKER_SCHEMA2;
}

/** Docker schema 1, signed or not. */
export function isSchema1MediaType(mediaType: string): boolean {
  const t = normaliseMediaType(mediaType);
  return t === DOCKER_SCHEMA1 || t === DOCKER_SCHEMA1_SIGNED;
}

/** Any manifest media type regscan decodes. */
export function isManifestMediaType(mediaType: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(normaliseMediaType(mediaType));
}

/** An image config blob (whose labels and creation time regscan reads). */
export function isImageConfigMediaType(mediaType: string): boolean {
  const t = normaliseMediaType(mediaType);
  return t === OCI_CONFIG || t === DOCKER_CONFIG;
}
