/**
 * Lists a repository's tags: `GET /v2/NAME/tags/list?n=N`, following `Link: rel="next"`
 * on the registry's own origin until it is gone, bounded in pages, in tags and in total
 * time, so that a runaway, looping or dripping listing stops with a clear error. Tags that
 * break the tag grammar are dropped and reported, never passed on.
 */
import { sanitizeText } from "../../redact.js";
import {
  InvalidResponseError,
  type RegistryErrorContext,
  TagListError,
  TimeoutError,
} from "../errors.js";
import { type InvalidTagsReport, partitionTags } from "../tag-names.js";
import { DEFAULT_TAG_LIST_TIMEOUT_MS, RequestDeadline } from "./deadline.js";
import { RegistryPath, readBounded, type Transport } from "./exchange.js";
import { nextPageOf } from "./link-header.js";
import { expectStatus } from "./status.js";

/** Bounds of one listing. */
export interface TagListOptions {
  /** Tags asked for per page (`n`; default 1000). */
  pageSize?: number;
  /** Most pages followed (default 10,000). */
  maxPages?: number;
  /** Most tags accepted (default 1,000,000). */
  maxTags?: number;
  /** Total deadline of the listing, every page included (default 5 minutes). */
  timeoutMs?: number;
  /** Told about tags dropped for breaking the tag grammar (once per listing). */
  onInvalidTags?: (report: InvalidTagsReport) => void;
  signal?: AbortSignal;
}

/** Largest tag-list page body accepted. */
export const MAX_TAG_PAGE_BYTES = 32 * 1024 * 1024;

/** Every valid tag of `repository` on `host`, in the registry's order. */
export async function listTags(
  transport: Transport,
  host: string,
  repository: string,
  opts: TagListOptions = {},
): Promise<string[]> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TAG_LIST_TIMEOUT_MS;
  const deadline = new RequestDeadline(timeoutMs, opts.signal);
  try {
    const all = await listAll(transport, host, repository, opts, deadline.signal);
    const { valid, invalid } = partitionTags(all, host, repository);
    if (invalid) opts.onInvalidTags?.(invalid);
    return valid;
  } catch (err) {
    if (!deadline.expired) throw err;
    throw new TimeoutError({ host, repository, operation: "tag listing", timeoutMs, cause: err });
  } finally {
    deadline.clear();
  }
}

async function listAll(
  transport: Transport,
  host: string,
  repository: string,
  opts: TagListOptions,
  signal: AbortSignal,
): Promise<string[]> {
  const maxPages = opts.maxPages ?? 10_000;
  const maxTags = opts.maxTags ?? 1_000_000;
  const ctx = { host, repository };
  const first = `/v2/${repository}/tags/list?n=${encodeURIComponent(opts.pageSize ?? 1000)}`;
  let url: URL | RegistryPath | undefined = new RegistryPath(host, first);
  const tags: string[] = [];
  const seen = new Set<string>();
  for (let page = 0; url; page++) {
    if (page >= maxPages) {
      throw new TagListError({
        ...ctx,
        message: `tag listing stopped after ${maxPages} pages (maxTagPages)`,
      });
    }
    if (seen.has(url.href))
      throw new TagListError({ ...ctx, message: "tag listing loops (a next page repeats)" });
    const res = await transport({
      method: "GET",
      url,
      headers: { accept: "application/json" },
      signal,
      operation: `tag list page ${page + 1}`,
      bodyLimit: MAX_TAG_PAGE_BYTES,
    });
    await expectStatus(res, 200, ctx);
    // The first page's URL is known once the origin layer has sent it.
    const at: URL = url instanceof URL ? url : res.url;
    seen.add(at.href);
    const bytes = await readBounded(res, MAX_TAG_PAGE_BYTES, "tag list page", ctx);
    for (const tag of pageTags(bytes, res.headers.get("content-type"), ctx)) {
      tags.push(tag);
      if (tags.length > maxTags) {
        throw new TagListError({
          ...ctx,
          message: `repository has more than ${maxTags} tags (maxTags)`,
        });
      }
    }
    url = nextPage(res.headers.get("link"), at, ctx);
  }
  return tags;
}

/** The page's tags; anything but `{"tags": [strings]}` (or `null`) is an invalid answer. */
function pageTags(bytes: Buffer, contentType: string | null, ctx: RegistryErrorContext): string[] {
  const type = contentType === null ? "" : ` (content-type ${sanitizeText(contentType, 80)})`;
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch {
    const html = /^\s*</.test(bytes.subarray(0, 64).toString("utf8")) ? "HTML, " : "";
    throw new InvalidResponseError({ ...ctx, message: `tag list is ${html}not JSON${type}` });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InvalidResponseError({ ...ctx, message: `tag list is not a JSON object${type}` });
  }
  const tags = (json as { tags?: unknown }).tags;
  // Registries answer `"tags": null` for a repository whose tags were all deleted.
  if (tags === null || tags === undefined) return [];
  if (!Array.isArray(tags) || !tags.every((t): t is string => typeof t === "string")) {
    throw new InvalidResponseError({
      ...ctx,
      message: "tag list has no array of strings under `tags`",
    });
  }
  return tags;
}

function nextPage(link: string | null, current: URL, ctx: RegistryErrorContext): URL | undefined {
  const next = nextPageOf(link, current);
  if (next === undefined) return undefined;
  // Stopping here would return a truncated listing as if it were complete.
  if ("unusable" in next)
    throw new TagListError({ ...ctx, message: `tag listing cannot go on: ${next.unusable}` });
  return next.url;
}
