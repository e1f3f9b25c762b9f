/**
 * Lists a repository's tags: `GET /v2/NAME/tags/list?n=N`, following `Link: rel="next"`
 * on the registry's own origin until it is gone, bounded in pages, in tags and in total
 * time, so that a runaway, looping or dripping listing stops with a clear error. Tags that
 * break the tag grammar are dropped and reported, never passed on. Registries' known quirks
 * are absorbed here: a refused page size is asked again smaller (and remembered per host),
 * and a next link that lost the repository's path is put back on it.
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
import {
  ERROR_BODY_LIMIT,
  type HttpResponse,
  RegistryPath,
  readBounded,
  readTextPrefix,
  type Transport,
} from "./exchange.js";
import { nextPageOf } from "./link-header.js";
import { expectStatus, parseRegistryErrors, registryErrorFromResponse } from "./status.js";
import { pageSizeAfterRefusal, type TagPageCaps } from "./tag-page-caps.js";

/** Bounds of one listing. */
export interface TagListOptions {
  /** Tags asked for per page (`n`; default 1000). */
  pageSize?: number | undefined;
  /** Most pages followed (default 10,000). */
  maxPages?: number | undefined;
  /** Most tags accepted (default 1,000,000). */
  maxTags?: number | undefined;
  /** Total deadline of the listing, every page included (default 5 minutes). */
  timeoutMs?: number | undefined;
  /** Page sizes hosts refused before, shared between listings (default: this listing's own). */
  pageCaps?: TagPageCaps | undefined;
  /** Told about tags dropped for breaking the tag grammar (once per listing). */
  onInvalidTags?: ((report: InvalidTagsReport) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/** One listing: the repository, on its registry host, and the listing's bounds. */
export interface TagListRequest extends TagListOptions {
  host: string;
  repository: string;
}

/** Largest tag-list page body accepted. */
export const MAX_TAG_PAGE_BYTES = 32 * 1024 * 1024;

/** Every valid tag of `repository` on `host`, in the registry's order. */
export async function listTags(transport: Transport, opts: TagListRequest): Promise<string[]> {
  const { host, repository } = opts;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TAG_LIST_TIMEOUT_MS;
  const deadline = new RequestDeadline(timeoutMs, opts.signal);
  try {
    const all = await listAll(transport, { ...opts, signal: deadline.signal });
    const { valid, invalid } = partitionTags(all, { host, repository });
    if (invalid) opts.onInvalidTags?.(invalid);
    return valid;
  } catch (err) {
    if (!deadline.expired) throw err;
    throw new TimeoutError({ host, repository, operation: "tag listing", timeoutMs, cause: err });
  } finally {
    deadline.clear();
  }
}

/** Every tag of the listing, valid or not; `opts.signal` carries the listing's deadline. */
async function listAll(transport: Transport, opts: TagListRequest): Promise<string[]> {
  const { host, repository, signal } = opts;
  const maxPages = opts.maxPages ?? 10_000;
  const maxTags = opts.maxTags ?? 1_000_000;
  const ctx = { host, repository };
  const pageSize = Math.min(opts.pageSize ?? 1000, opts.pageCaps?.get(host) ?? Infinity);
  const first = `/v2/${repository}/tags/list?n=${encodeURIComponent(pageSize)}`;
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
    let res = await transport({
      method: "GET",
      url,
      headers: { accept: "application/json" },
      signal,
      operation: `tag list page ${page + 1}`,
      bodyLimit: MAX_TAG_PAGE_BYTES,
    });
    const smaller = res.status === 200 ? undefined : await refusedPageSize(res, url, ctx);
    if (smaller !== undefined) {
      // The same page again, asking for as many tags as the host takes (and from now on).
      opts.pageCaps?.learn(host, smaller);
      url = withPageSize(url, smaller);
      res = await transport({
        method: "GET",
        url,
        headers: { accept: "application/json" },
        signal,
        operation: `tag list page ${page + 1} (n=${smaller})`,
        bodyLimit: MAX_TAG_PAGE_BYTES,
      });
    }
    await expectStatus(res, 200, ctx);
    // The first page's URL is known once the origin layer has sent it.
    const at: URL = url instanceof URL ? url : res.url;
    seen.add(at.href);
    const bytes = await readBounded(res, { limit: MAX_TAG_PAGE_BYTES, what: "tag list page", ctx });
    for (const tag of pageTags(bytes, res.headers.get("content-type"), ctx)) {
      tags.push(tag);
      if (tags.length > maxTags) {
        throw new TagListError({
          ...ctx,
          message: `repository has more than ${maxTags} tags (maxTags)`,
        });
      }
    }
    url = nextPage({ link: res.headers.get("link"), current: at, repository, ctx });
  }
  return tags;
}

/** The page size to ask again with when `res` refused the one asked for; throws any other error. */
async function refusedPageSize(
  res: HttpResponse,
  url: URL | RegistryPath,
  ctx: RegistryErrorContext,
): Promise<number | undefined> {
  const requested = Number(searchOf(url).get("n"));
  const body = await readTextPrefix(res, ERROR_BODY_LIMIT);
  const codes = parseRegistryErrors(body).map((e) => e.code);
  const smaller = Number.isFinite(requested)
    ? pageSizeAfterRefusal(res.status, codes, requested)
    : undefined;
  if (smaller !== undefined) return smaller;
  throw registryErrorFromResponse({ ...ctx, status: res.status, headers: res.headers, body });
}

function searchOf(url: URL | RegistryPath): URLSearchParams {
  return url instanceof URL
    ? url.searchParams
    : new URLSearchParams(url.path.slice(url.path.indexOf("?") + 1));
}

/** `url` asking for `n` tags, the rest of its query kept. */
function withPageSize(url: URL | RegistryPath, n: number): URL | RegistryPath {
  if (url instanceof URL) {
    const next = new URL(url);
    next.searchParams.set("n", String(n));
    return next;
  }
  const q = url.path.indexOf("?");
  const params = searchOf(url);
  params.set("n", String(n));
  return new RegistryPath(url.host, `${q < 0 ? url.path : url.path.slice(0, q)}?${params}`);
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

function nextPage(page: {
  /** The page's `Link` header. */
  link: string | null;
  current: URL;
  repository: string;
  ctx: RegistryErrorContext;
}): URL | undefined {
  const { link, current, repository, ctx } = page;
  const next = nextPageOf(link, current);
  if (next === undefined) return undefined;
  // Stopping here would return a truncated listing as if it were complete.
  if ("unusable" in next)
    throw new TagListError({ ...ctx, message: `tag listing cannot go on: ${next.unusable}` });
  return onRepositoryPath(next.url, repository);
}

/**
 * The next page of this repository's listing: a same-origin link whose path is not
 * `/v2/<repository>/tags/list` is put back on it, its query (the cursor) kept. Artifactory
 * leaves out the virtual repository (`/v2/huge/repo-0/...` for `virtual/huge/repo-0`,
 * JFrog RTFACT-18971; renovate keeps its own URL and takes only the cursor,
 * lib/modules/datasource/docker/index.ts); following the link as sent would list another
 * repository or answer 401 for a scope the token does not cover.
 */
function onRepositoryPath(next: URL, repository: string): URL {
  const path = `/v2/${repository}/tags/list`;
  if (next.pathname === path) return next;
  return new URL(`${path}${next.search}`, next);
}
