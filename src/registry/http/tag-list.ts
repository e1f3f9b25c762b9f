/**
 * Lists a repository's tags: `GET /v2/NAME/tags/list?n=N`, following `Link: rel="next"`
 * on the registry's own origin until it is gone, bounded in pages and in tags so that a
 * runaway (or looping) listing stops with a clear error.
 */
import { RegistryError, type RegistryErrorContext, registryErrorFromResponse } from "../errors.js";
import { ERROR_BODY_LIMIT, readBounded, readTextPrefix, type Transport } from "./exchange.js";
import { nextPageOf } from "./link-header.js";

/** A listing went past its bounds or pointed somewhere it may not go. */
export class TagListError extends RegistryError {
  readonly code = "TAG_LIST_LIMIT";
  constructor(what: string, ctx: RegistryErrorContext = {}) {
    super(what, ctx);
  }
}

/** Bounds of one listing. */
export interface TagListOptions {
  /** Tags asked for per page (`n`; default 1000). */
  pageSize?: number;
  /** Most pages followed (default 10,000). */
  maxPages?: number;
  /** Most tags accepted (default 1,000,000). */
  maxTags?: number;
  signal?: AbortSignal;
}

/** Largest tag-list page body accepted. */
export const MAX_TAG_PAGE_BYTES = 32 * 1024 * 1024;

/** Every tag of `repository` at `base`, in the registry's order. */
export async function listTags(
  transport: Transport,
  base: URL,
  host: string,
  repository: string,
  opts: TagListOptions = {},
): Promise<string[]> {
  const maxPages = opts.maxPages ?? 10_000;
  const maxTags = opts.maxTags ?? 1_000_000;
  const ctx = { host, repository };
  let url: URL | undefined = new URL(`/v2/${repository}/tags/list`, base);
  url.searchParams.set("n", String(opts.pageSize ?? 1000));
  const tags: string[] = [];
  const seen = new Set<string>();
  for (let page = 0; url; page++) {
    if (page >= maxPages) {
      throw new TagListError(`tag listing stopped after ${maxPages} pages (maxTagPages)`, ctx);
    }
    if (seen.has(url.href)) throw new TagListError("tag listing loops (a next page repeats)", ctx);
    seen.add(url.href);
    const res = await transport({
      method: "GET",
      url,
      headers: { accept: "application/json" },
      signal: opts.signal,
    });
    if (res.status !== 200) {
      const body = await readTextPrefix(res, ERROR_BODY_LIMIT);
      throw registryErrorFromResponse({ status: res.status, headers: res.headers, body, ...ctx });
    }
    const bytes = await readBounded(res, MAX_TAG_PAGE_BYTES, "tag list page", ctx);
    for (const tag of pageTags(bytes, ctx)) {
      tags.push(tag);
      if (tags.length > maxTags) {
        throw new TagListError(`repository has more than ${maxTags} tags (maxTags)`, ctx);
      }
    }
    url = nextPage(res.headers.get("link"), url, ctx);
  }
  return tags;
}

function pageTags(bytes: Buffer, ctx: RegistryErrorContext): string[] {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new TagListError("tag list is not JSON", ctx);
  }
  const tags =
    typeof json === "object" && json !== null ? (json as { tags?: unknown }).tags : undefined;
  // Registries answer `"tags": null` for a repository whose tags were all deleted.
  if (tags === null || tags === undefined) return [];
  if (!Array.isArray(tags) || !tags.every((t): t is string => typeof t === "string")) {
    throw new TagListError("tag list has no array of strings under `tags`", ctx);
  }
  return tags;
}

function nextPage(link: string | null, current: URL, ctx: RegistryErrorContext): URL | undefined {
  const next = nextPageOf(link, current);
  if (next === undefined) return undefined;
  // Stopping here would return a truncated listing as if it were complete.
  if ("unusable" in next) throw new TagListError(`tag listing cannot go on: ${next.unusable}`, ctx);
  return next.url;
}
