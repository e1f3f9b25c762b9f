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
  const labels = Object.entries(info.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  out += labels.length === 0 ? "Labels:    (none)\n" : "Labels:\n";
  for (const [k, v] of labels) out += `  ${k}=${v}\n`;
  return out;
}

function platformText(p: Platform): string {
  return formatPlatform(p);
}
