/**
 * Orders images and tags the way users pick "the latest": newest first by creation time,
 * or highest first by the tag's semantic version (read leniently: `v1.2`, `1.2.3-alpine`).
 * Both are total orders, so sorting gives the same result whatever the input order.
 */
import semver from "semver";
import type { ImageInfo } from "./info.js";
import { bestCreationTime, type CreationTimeOptions } from "./label-timestamps.js";

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Compares two images newest first by creation time (`createdAt`, or the best label time
 * with `preferLabels`); images without a time come last; ties go by canonical reference.
 */
export function compareNewestFirst(
  a: ImageInfo,
  b: ImageInfo,
  options: CreationTimeOptions = { preferLabels: false },
): number {
  const ta = timeOf(a, options);
  const tb = timeOf(b, options);
  if (ta !== tb) {
    if (ta === undefined) return 1;
    if (tb === undefined) return -1;
    return tb - ta;
  }
  return byString(a.ref.toString(), b.ref.toString());
}

function timeOf(info: ImageInfo, options: CreationTimeOptions): number | undefined {
  const t = bestCreationTime(info, options)?.getTime();
  return t === undefined || Number.isNaN(t) ? undefined : t;
}

/** A sorted copy, newest first (see compareNewestFirst). */
export function sortNewestFirst(
  images: Iterable<ImageInfo>,
  options: CreationTimeOptions = { preferLabels: false },
): ImageInfo[] {
  return [...images].sort((a, b) => compareNewestFirst(a, b, options));
}

// v?MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], as Masterminds/semver (Flux v1's) reads tags.
const LENIENT_VERSION =
  /^[vV]?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

/**
 * A tag read as a semantic version. Declared here rather than as semver's `SemVer` so that
 * regscan's published types do not need `@types/semver`.
 */
export interface TagVersion {
  /** The normalised version, e.g. `1.2.0` for `v1.2`. */
  readonly version: string;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly prerelease: ReadonlyArray<string | number>;
  readonly build: readonly string[];
}

/**
 * Reads a tag as a semantic version, leniently: a leading `v`, missing minor or patch
 * (`v1.2` is 1.2.0) and leading zeros are accepted; `1.2.3-alpine` is a pre-release of
 * 1.2.3. Undefined when the tag is not a version at all.
 */
export function tagVersion(tag: string): TagVersion | undefined {
  return parseTagVersion(tag);
}

function parseTagVersion(tag: string): semver.SemVer | undefined {
  const m = LENIENT_VERSION.exec(tag);
  if (m === null) return undefined;
  const numbers = [m[1], m[2], m[3]].map((n) => (n === undefined ? 0 : Number(n)));
  if (!numbers.every((n) => Number.isSafeInteger(n))) return undefined;
  const pre = m[4] === undefined ? "" : `-${m[4]}`;
  const build = m[5] === undefined ? "" : `+${m[5]}`;
  return semver.parse(`${numbers.join(".")}${pre}${build}`, { loose: true }) ?? undefined;
}

/**
 * Compares two tags highest version first. Equal versions (`1.10` and `1.10.0`) put the
 * longer, more precise tag first, as Flux v1 did; tags that are not versions come last,
 * in string order.
 */
export function compareTagsBySemverDesc(a: string, b: string): number {
  const va = parseTagVersion(a);
  const vb = parseTagVersion(b);
  if (va === undefined && vb === undefined) return byString(a, b);
  if (va === undefined) return 1;
  if (vb === undefined) return -1;
  const cmp = semver.compare(vb, va);
  return cmp !== 0 ? cmp : byString(b, a);
}

/** A sorted copy of the tags, highest version first (see compareTagsBySemverDesc). */
export function sortTagsBySemverDesc(tags: Iterable<string>): string[] {
  return [...tags].sort(compareTagsBySemverDesc);
}

/** Compares two images by their tags' versions, highest first; untagged images last. */
export function compareBySemverDesc(a: ImageInfo, b: ImageInfo): number {
  const ta = a.ref.tag;
  const tb = b.ref.tag;
  if (ta === undefined || tb === undefined) {
    if (ta !== tb) return ta === undefined ? 1 : -1;
    return byString(a.ref.toString(), b.ref.toString());
  }
  const cmp = compareTagsBySemverDesc(ta, tb);
  return cmp !== 0 ? cmp : byString(a.ref.toString(), b.ref.toString());
}

/** A sorted copy of the images, highest tag version first. */
export function sortBySemverDesc(images: Iterable<ImageInfo>): ImageInfo[] {
  return [...images].sort(compareBySemverDesc);
}
