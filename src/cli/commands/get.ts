/**
 * `regscan get IMAGE`: what the cache holds for a repository (every tag) or for one tag or
 * digest, read from the store alone; the registry is never contacted.
 */
import type { Command } from "commander";
import { Cache, type CachedTag } from "../../cache/cache.js";
import { openStore, redact } from "../../cache/open-store.js";
import type { RepositoryRecord } from "../../cache/records.js";
import type { Store } from "../../cache/store.js";
import { imageInfoToJSON } from "../../image/json-form.js";
import { type ImageName, type ImageRef, parseImageRef } from "../../image/ref.js";
import { formatRfc3339 } from "../../image/rfc3339.js";
import type { OperationOptions } from "../../registry/registry.js";
import { type CliContext, CliError } from "../context.js";
import { cliLogger } from "../logger.js";
import { parseOutputFormat } from "../options.js";

/** How long reading one answer from the store may take. */
const GET_TIMEOUT_MS = 60_000;

interface GetFlags {
  cache?: string;
  output: "text" | "json";
}

/** Registers `regscan get`. */
export function registerGetCommand(program: Command, ctx: CliContext): void {
  program
    .command("get")
    .description("show what the cache holds for a repository or one tag (no registry contact)")
    .argument("<image>", "repository (every cached tag), or IMAGE:TAG / IMAGE@DIGEST (one image)")
    .option("--cache <url>", "cache store URL (default: sqlite in the user cache directory)")
    .option("-o, --output <format>", "text or json", parseOutputFormat, "text")
    .action(async (image: string, flags: GetFlags) => {
      let ref: ImageRef;
      try {
        ref = parseImageRef(image);
      } catch (error) {
        throw new CliError((error as Error).message);
      }
      const logger = cliLogger(ctx, "warn");
      let store: Store;
      try {
        store = await openStore(flags.cache, { logger });
      } catch (error) {
        throw new CliError((error as Error).message);
      }
      try {
        const cache = new Cache({ store, logger });
        // The stores bound each request; this bounds the whole answer (thousands of tags).
        const opts = { signal: AbortSignal.timeout(GET_TIMEOUT_MS) };
        if (ref.tag !== undefined || ref.digest !== undefined) {
          await showImage(ctx, cache, ref, flags, opts);
        } else {
          await showRepository(ctx, cache, ref.name, flags, opts);
        }
      } catch (error) {
        if (error instanceof CliError) throw error;
        const where = flags.cache ? ` (cache ${redact(flags.cache)})` : "";
        throw new CliError(`${(error as Error).message}${where}`);
      } finally {
        await store.close();
      }
    });
}

const time = (d: Date | undefined) => (d ? formatRfc3339(d) : undefined);

async function showImage(
  ctx: CliContext,
  cache: Cache,
  ref: ImageRef,
  flags: GetFlags,
  opts: OperationOptions,
) {
  const tag = ref.digest === undefined ? ref.tag : undefined;
  const cached = tag === undefined ? undefined : await cache.cachedTag(ref.name, tag, opts);
  if (cached?.record?.entry.excludedReason !== undefined) {
    const reason = cached.record.entry.excludedReason;
    if (flags.output === "json") {
      ctx.stdout.write(
        `${JSON.stringify({ ref: ref.toString(), excludedReason: reason, ...bookkeeping(cached) }, null, 2)}\n`,
      );
    } else {
      ctx.stdout.write(`${ref.toString()}\n  excluded: ${reason}\n`);
    }
    return;
  }
  // getImage gives the right error when the tag (or the repository) is not cached.
  const info = await cache.getImage(ref, opts);
  if (flags.output === "json") {
    ctx.stdout.write(
      `${JSON.stringify({ ...imageInfoToJSON(info), ...bookkeeping(cached) }, null, 2)}\n`,
    );
    return;
  }
  const lines = [
    info.ref.toString(),
    `  digest:     ${info.digest}`,
    info.platformDigest && `  platform digest: ${info.platformDigest}`,
    info.imageID && `  image ID:   ${info.imageID}`,
    `  media type: ${info.mediaType}`,
    info.createdAt && `  created:    ${time(info.createdAt)}`,
    info.platform &&
      `  platform:   ${[info.platform.os, info.platform.architecture, info.platform.variant].filter(Boolean).join("/")}`,
    info.platforms.length > 1 &&
      `  platforms:  ${info.platforms.map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join("/")).join(", ")}`,
    ...Object.entries(info.labels).map(([k, v]) => `  label ${k}=${v}`),
    ...Object.entries(info.annotations ?? {}).map(([k, v]) => `  annotation ${k}=${v}`),
    ...Object.entries(info.indexAnnotations ?? {}).map(([k, v]) => `  index annotation ${k}=${v}`),
    cached?.deadline && `  next check: ${time(cached.deadline)}`,
  ];
  ctx.stdout.write(`${lines.filter((l) => typeof l === "string").join("\n")}\n`);
}

function bookkeeping(cached: CachedTag | undefined) {
  if (!cached?.record) return {};
  return {
    cache: {
      checkedAt: time(cached.record.checkedAt),
      nextCheck: time(cached.deadline),
      refreshIntervalSeconds: Math.round(cached.record.intervalMs / 1000),
    },
  };
}

async function showRepository(
  ctx: CliContext,
  cache: Cache,
  name: ImageName,
  flags: GetFlags,
  opts: OperationOptions,
) {
  const record = await cache.repositoryRecord(name, opts);
  const tags = await cache.cachedTags(name, opts); // throws NOT_CACHED or the replayed error
  if (flags.output === "json") {
    ctx.stdout.write(`${JSON.stringify(repositoryJson(name, record, tags), null, 2)}\n`);
    return;
  }
  const out: string[] = [name.toString()];
  if (record?.lastScanned) out.push(`  last scanned: ${time(record.lastScanned)}`);
  if (record?.lastUpdate) out.push(`  last update:  ${time(record.lastUpdate)}`);
  if (record?.lastError) {
    out.push(`  last error:   ${record.lastError.code}: ${record.lastError.message}`);
  }
  const cachedCount = tags.filter((t) => t.record).length;
  out.push(
    `  tags: ${tags.length} (${cachedCount} cached${record?.artifactTags ? `, ${record.artifactTags} signature/attestation/SBOM artifacts` : ""}${record?.filteredOut ? `, ${record.filteredOut} left out by the tag filter` : ""})`,
  );
  const rows = tags.map((t) => {
    const entry = t.record?.entry;
    if (!entry) return [t.tag, "(not cached)", "", ""];
    if (entry.excludedReason !== undefined)
      return [t.tag, `excluded: ${entry.excludedReason}`, "", ""];
    return [t.tag, entry.info.digest, time(entry.info.createdAt) ?? "", time(t.deadline) ?? ""];
  });
  out.push(...table(["TAG", "DIGEST", "CREATED", "NEXT CHECK"], rows));
  ctx.stdout.write(`${out.join("\n")}\n`);
}

function repositoryJson(name: ImageName, record: RepositoryRecord | undefined, tags: CachedTag[]) {
  const images: Record<string, unknown> = {};
  const excluded: Record<string, string> = {};
  const missing: string[] = [];
  for (const t of tags) {
    const entry = t.record?.entry;
    if (!entry) missing.push(t.tag);
    else if (entry.excludedReason !== undefined) excluded[t.tag] = entry.excludedReason;
    else images[t.tag] = imageInfoToJSON(entry.info);
  }
  return {
    name: name.toString(),
    tags: tags.map((t) => t.tag),
    images,
    excluded,
    missing,
    filteredOut: record?.filteredOut ?? 0,
    artifactTags: record?.artifactTags ?? 0,
    lastUpdate: time(record?.lastUpdate),
    lastScanned: time(record?.lastScanned),
    lastError: record?.lastError && {
      code: record.lastError.code,
      message: record.lastError.message,
      at: time(record.lastError.at),
    },
  };
}

/** Left-aligned columns, two spaces apart. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
