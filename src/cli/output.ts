/**
 * How `tags` and `inspect` print: plain lines or a readable summary for people, one JSON
 * document for machines.
 */
import type { ImageEntry, ImageInfo, Platform } from "../image/info.js";
import { imageInfoToJSON } from "../image/json-form.js";
import type { ImageRef } from "../image/ref.js";
import { formatRfc3339 } from "../image/rfc3339.js";
import { formatPlatform } from "../registry/manifest/platform.js";

/** `--output`. */
export type OutputFormat = "text" | "json";

/** `regscan inspect --output json`: the image's JSON without bookkeeping, or why it is excluded. */
export function inspectJson(ref: ImageRef, entry: ImageEntry): Record<string, unknown> {
  if (entry.info === undefined)
    return { ref: ref.toString(), excludedReason: entry.excludedReason };
  const j = imageInfoToJSON(entry.info);
  // The order people read it in; undefined fields drop out of the JSON.
  return {
    ref: ref.toString(),
    digest: j.digest,
    platformDigest: j.platformDigest,
    imageID: j.imageID,
    mediaType: j.mediaType,
    createdAt: j.createdAt,
    labels: j.labels,
    annotations: j.annotations,
    indexAnnotations: j.indexAnnotations,
    platform: j.platform,
    platforms: j.platforms,
  };
}

/** `regscan inspect`: a readable summary. */
export function inspectText(ref: ImageRef, entry: ImageEntry): string {
  if (entry.info === undefined) return `${ref.toString()}\n  excluded: ${entry.excludedReason}\n`;
  const info: ImageInfo = entry.info;
  const rows: [string, string | undefined][] = [
    ["Reference", ref.toString()],
    ["Digest", info.digest],
    ["Platform digest", info.platformDigest],
    ["Image ID", info.imageID],
    ["Media type", info.mediaType],
    ["Created", info.createdAt ? formatRfc3339(info.createdAt) : undefined],
    ["Platform", info.platform ? formatPlatform(info.platform) : undefined],
    [
      "Platforms",
      info.platforms.length > 1 ? info.platforms.map(platformText).join(", ") : undefined,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  let out = "";
  for (const [k, v] of rows) if (v !== undefined) out += `${`${k}:`.padEnd(width)}${v}\n`;
  out += keyValueSection("Labels", info.labels);
  // Annotations are shown only when there are some: most images have none.
  if (info.annotations && Object.keys(info.annotations).length > 0) {
    out += keyValueSection("Annotations", info.annotations);
  }
  if (info.indexAnnotations && Object.keys(info.indexAnnotations).length > 0) {
    out += keyValueSection("Index annotations", info.indexAnnotations);
  }
  return out;
}

/** A heading and its `key=value` lines in key order, or `(none)`. */
function keyValueSection(heading: string, map: Record<string, string>): string {
  const entries = Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 0) return `${`${heading}:`.padEnd(11)}(none)\n`;
  return `${heading}:\n${entries.map(([k, v]) => `  ${k}=${v}\n`).join("")}`;
}

function platformText(p: Platform): string {
  return formatPlatform(p);
}
