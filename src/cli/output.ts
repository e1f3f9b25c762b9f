/**
 * How `inspect` and `get` print an image: one readable summary with every value in one
 * column for people, or the image JSON form (the HTTP API's, key for key) for machines.
 */
import type { ImageEntry, ImageInfo, Labels } from "../image/info.js";
import { type ImageInfoJSON, imageInfoToJSON } from "../image/json-form.js";
import type { ImageRef } from "../image/ref.js";
import { formatRfc3339 } from "../image/rfc3339.js";
import { formatPlatform } from "../registry/manifest/platform.js";
import { terminalSafe } from "./terminal-text.js";

/** `--output`. */
export type OutputFormat = "text" | "json";

/** One `Name: value` row; rows without a value are left out. */
export type Row = readonly [name: string, value: string | undefined];

/**
 * `regscan inspect --output json`: the image JSON form, in its key order, with `ref` the
 * reference asked for; or why the image is excluded.
 */
export function inspectJson(
  ref: ImageRef,
  entry: ImageEntry,
): ImageInfoJSON | { ref: string; excludedReason: string } {
  if (entry.info === undefined)
    return { ref: ref.toString(), excludedReason: entry.excludedReason };
  // Overwriting `ref` keeps its place (first) in the key order.
  return { ...imageInfoToJSON(entry.info), ref: ref.toString() };
}

/** `regscan inspect`: a readable summary. */
export function inspectText(ref: ImageRef, entry: ImageEntry): string {
  if (entry.info === undefined) {
    return alignedRows([
      ["Reference", ref.toString()],
      ["Excluded", entry.excludedReason],
    ]);
  }
  return imageText(ref, entry.info);
}

/**
 * An image as aligned `Name: value` rows, `extra` rows (e.g. the cache's bookkeeping) after
 * the image's own, then its labels and annotations as indented `key=value` lines.
 */
export function imageText(ref: ImageRef, info: ImageInfo, extra: readonly Row[] = []): string {
  const rows: Row[] = [
    ["Reference", ref.toString()],
    ["Digest", info.digest],
    ["Platform digest", info.platformDigest],
    ["Image ID", info.imageID],
    ["Media type", info.mediaType],
    ["Created", info.createdAt ? formatRfc3339(info.createdAt) : undefined],
    ["Platform", info.platform ? formatPlatform(info.platform) : undefined],
    [
      "Platforms",
      info.platforms.length > 1 ? info.platforms.map(formatPlatform).join(", ") : undefined,
    ],
    ...extra,
  ];
  const sections: [string, Labels | undefined][] = [
    ["Labels", info.labels],
    // Annotations are shown only when there are some: most images have none.
    ["Annotations", nonEmpty(info.annotations)],
    ["Index annotations", nonEmpty(info.indexAnnotations)],
  ];
  const shown = sections.filter((s): s is [string, Labels] => s[1] !== undefined);
  const width = columnWidth([...rows.map(([name]) => name), ...shown.map(([name]) => name)]);
  let out = alignedRows(rows, width);
  for (const [heading, map] of shown) {
    const entries = Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (entries.length === 0) out += `${`${heading}:`.padEnd(width)}(none)\n`;
    else
      out += `${heading}:\n${entries.map(([k, v]) => `  ${terminalSafe(k)}=${terminalSafe(v)}\n`).join("")}`;
  }
  return out;
}

/** Rows as `Name:` padded to one column (wide enough for every name by default). */
export function alignedRows(
  rows: readonly Row[],
  width = columnWidth(rows.map(([name]) => name)),
): string {
  let out = "";
  for (const [name, value] of rows) {
    if (value !== undefined) out += `${`${name}:`.padEnd(width)}${terminalSafe(value)}\n`;
  }
  return out;
}

/** Where values start: after the longest name, its colon and two spaces. */
function columnWidth(names: readonly string[]): number {
  return Math.max(...names.map((n) => n.length)) + 3;
}

function nonEmpty(map: Labels | undefined): Labels | undefined {
  return map !== undefined && Object.keys(map).length > 0 ? map : undefined;
}

/** Left-aligned columns, two spaces apart; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const safe = rows.map((r) => r.map(terminalSafe));
  const widths = header.map((h, i) => Math.max(h.length, ...safe.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...safe.map(line)];
}
