/**
 * `regscan get IMAGE`: what the cache holds for a repository (every tag) or for one tag or
 * digest, read from the store alone; the registry is never contacted.
 */
import type { Command } from "commander";
import type { OperationOptions } from "../../abort.js";
import { Cache, type CachedTag } from "../../cache/cache.js";
import { openStore, redact, StoreNotFoundError } from "../../cache/open-store.js";
import type { RepositoryRecord } from "../../cache/records.js";
import type { Store } from "../../cache/store.js";
import { imageInfoToJSON } from "../../image/json-form.js";
import { type ImageName, type ImageRef, parseImageRef } from "../../image/ref.js";
import { formatRfc3339 } from "../../image/rfc3339.js";
import { type CliContext, CliError } from "../context.js";
import { cliLogger } from "../logger.js";
import { parseOutputFormat } from "../options.js";
import { alignedRows, imageText, type Row, table } from "../output.js";

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
        // Reading only: a cache that does not exist is reported, never created empty.
        store = await openStore(flags.cache, { logger, mustExist: true });
      } catch (error) {
        if (error instanceof StoreNotFoundError) {
          // `scan` takes repositories: the name, even when a tag or digest was asked for.
          const cacheFlag = flags.cache === undefined ? "" : ` --cache ${redact(flags.cache)}`;
          throw new CliError(
            `no cache yet: ${error.store} does not exist; fill it with "regscan scan ${ref.name.familiar()}${cacheFlag}"`,
          );
        }
        throw new CliError((error as Error).message);
      }
      try {
        const cache = new Cache({ store, logger });
        // The stores bound each request; this bounds the whole answer (thousands of tags).
        const opts = { signal: AbortSignal.timeout(GET_TIMEOUT_MS) };
        if (ref.tag !== undefined || ref.digest !== undefined) {
          await showImage({ ctx, cache, flags, opts }, ref);
        } else {
          await showRepository({ ctx, cache, flags, opts }, ref.name);
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

/** What one `regscan get` reads from, and how it answers. */
interface GetRun {
  ctx: CliContext;
  cache: Cache;
  flags: GetFlags;
  opts: OperationOptions;
}

async function showImage({ ctx, cache, flags, opts }: GetRun, ref: ImageRef) {
  const tag = ref.digest === undefined ? ref.tag : undefined;
  const cached = tag === undefined ? undefined : await cache.cachedTag(ref.name, tag, opts);
  if (cached?.record?.entry.excludedReason !== undefined) {
    const reason = cached.record.entry.excludedReason;
    if (flags.output === "json") {
      ctx.stdout.write(
        `${JSON.stringify({ ref: ref.toString(), excludedReason: reason, ...bookkeeping(cached) }, null, 2)}\n`,
      );
    } else {
      ctx.stdout.write(
        alignedRows([
          ["Reference", ref.toString()],
          ["Excluded", reason],
          ...bookkeepingRows(cached),
        ]),
      );
    }
    return;
  }
  // getImage gives the right error when the tag (or the repository) is not cached.
  const info = await cache.getImage(ref, opts);
  if (flags.output === "json") {
    // The image JSON form (the API's, in its key order), then the cache's bookkeeping.
    ctx.stdout.write(
      `${JSON.stringify({ ...imageInfoToJSON(info), ...bookkeeping(cached) }, null, 2)}\n`,
    );
    return;
  }
  ctx.stdout.write(imageText(info.ref, info, bookkeepingRows(cached)));
}

function bookkeeping(cached: CachedTag | undefined) {
  if (!cached?.record) return {};
  const lastError = cached.record.lastError;
  return {
    cache: {
      checkedAt: time(cached.record.checkedAt),
      nextCheck: time(cached.deadline),
      refreshIntervalSeconds: Math.round(cached.record.intervalMs / 1000),
      ...(lastError
        ? {
            lastError: { code: lastError.code, message: lastError.message, at: time(lastError.at) },
          }
        : {}),
    },
  };
}

function bookkeepingRows(cached: CachedTag | undefined): Row[] {
  const record = cached?.record;
  if (!record) return [];
  return [
    ["Checked", time(record.checkedAt)],
    ["Next check", time(cached.deadline)],
    ["Last error", record.lastError && `${record.lastError.code}: ${record.lastError.message}`],
  ];
}

async function showRepository({ ctx, cache, flags, opts }: GetRun, name: ImageName) {
  const record = await cache.repositoryRecord(name, opts);
  const tags = await cache.cachedTags(name, opts); // throws NOT_CACHED or the replayed error
  if (flags.output === "json") {
    ctx.stdout.write(`${JSON.stringify(repositoryJson(name, record, tags), null, 2)}\n`);
    return;
  }
  const cachedCount = tags.filter((t) => t.record).length;
  const counts = [
    `${cachedCount} cached`,
    record?.artifactTags && `${record.artifactTags} signature/attestation/SBOM artifacts`,
    record?.filteredOut && `${record.filteredOut} left out by the tag filter`,
  ].filter((c): c is string => typeof c === "string");
  let out = alignedRows([
    ["Repository", name.toString()],
    ["Last scanned", time(record?.lastScanned)],
    ["Last update", time(record?.lastUpdate)],
    ["Last error", record?.lastError && `${record.lastError.code}: ${record.lastError.message}`],
    ["Tags", `${tags.length} (${counts.join(", ")})`],
  ]);
  if (tags.length > 0) {
    // What varies in length (an exclusion's reason, an error) goes last, where it cannot push
    // the other columns out of line.
    const rows = tags.map((t) => {
      const record = t.record;
      const entry = record?.entry;
      if (!record || !entry) return [t.tag, "-", "-", "-", "not cached"];
      const stale = record.lastError ? `stale: ${record.lastError.code}` : "";
      if (entry.excludedReason !== undefined) {
        return [t.tag, "-", "-", time(t.deadline) ?? "-", `excluded: ${entry.excludedReason}`];
      }
      return [
        t.tag,
        entry.info.digest,
        time(entry.info.createdAt) ?? "-",
        time(t.deadline) ?? "-",
        stale,
      ];
    });
    out += `\n${table(["TAG", "DIGEST", "CREATED", "NEXT CHECK", "NOTE"], rows).join("\n")}\n`;
  }
  ctx.stdout.write(out);
}

/**
 * The repository as JSON: `name`, `tags`, `images` as the API has them, then what only the
 * cache knows. Maps keyed by tag become objects through `fromEntries`, which keeps a tag
 * named `__proto__` (assignment would set the object's prototype and lose it).
 */
function repositoryJson(name: ImageName, record: RepositoryRecord | undefined, tags: CachedTag[]) {
  const images = new Map<string, unknown>();
  const excluded = new Map<string, string>();
  const missing: string[] = [];
  for (const t of tags) {
    const entry = t.record?.entry;
    if (!entry) missing.push(t.tag);
    else if (entry.excludedReason !== undefined) excluded.set(t.tag, entry.excludedReason);
    else images.set(t.tag, imageInfoToJSON(entry.info));
  }
  return {
    name: name.toString(),
    tags: tags.map((t) => t.tag),
    images: Object.fromEntries(images),
    excluded: Object.fromEntries(excluded),
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
