/**
 * Per-repository tag filters, applied to a tag listing before any metadata is fetched:
 * include and exclude patterns (globs, or regular expressions written `/.../`) and a
 * maximum number of tags, the newest by semantic version or by listing order.
 */
import picomatch from "picomatch";
import { RegscanError } from "../errors.js";
import { compareTagsBySemverDesc } from "../image/ordering.js";

/**
 * A pattern written `/source/` or `/source/flags` is a regular expression; anything else is
 * a glob. Tags never contain `/`, so no useful glob is mistaken for one.
 */
const REGEX_PATTERN = /^\/(.+)\/([a-z]*)$/s;
/** Flags a tag regular expression may carry (`g` and `y` would make matching stateful). */
const REGEX_FLAGS_ALLOWED = /^[imsu]*$/;

/** Which tags of a repository matter. */
export interface TagFilterOptions {
  /**
   * Keep only tags matching at least one of these (all tags when absent or empty). A pattern
   * is a glob matched against the whole tag (`v1.*`, `*-alpine`, `!(latest)`), or, written
   * between slashes, a JavaScript regular expression searched for anywhere in the tag
   * (`/^v\d+\.\d+\.\d+$/`; anchor it to match the whole tag; flags `i`, `m`, `s`, `u`).
   */
  include?: string[] | undefined;
  /** Drop tags matching any of these (same syntax); exclusion wins over inclusion. */
  exclude?: string[] | undefined;
  /** Keep at most this many of the remaining tags (a non-negative integer). */
  maxTags?: number | undefined;
  /**
   * Which tags `maxTags` keeps: `semver` (default), the highest versions (tags that are not
   * versions count as oldest); `listing`, the last ones in the registry's listing order
   * (registries that list in push order put the newest last).
   */
  order?: "semver" | "listing" | undefined;
}

/** A tag filter that cannot be used: a pattern that does not compile, or a bad number. */
export class InvalidTagFilterError extends RegscanError {
  readonly code = "INVALID_TAG_FILTER";
  constructor(
    /** The offending pattern or setting, as given. */
    readonly pattern: string,
    reason: string,
  ) {
    super(`invalid tag filter ${JSON.stringify(pattern)}: ${reason}`);
  }
}

type TagMatcher = (tag: string) => boolean;

/** A filter with its patterns compiled once, for use on many listings. */
export type CompiledTagFilter = (tags: readonly string[]) => string[];

function compilePattern(pattern: string): TagMatcher {
  if (typeof pattern !== "string" || pattern === "") {
    throw new InvalidTagFilterError(String(pattern), "a pattern must be a non-empty string");
  }
  if (/^\/\/[a-z]*$/.test(pattern)) {
    throw new InvalidTagFilterError(pattern, "the regular expression is empty");
  }
  const regex = REGEX_PATTERN.exec(pattern);
  if (regex !== null) {
    const [, source = "", flags = ""] = regex;
    if (!REGEX_FLAGS_ALLOWED.test(flags)) {
      throw new InvalidTagFilterError(pattern, `flags may only be i, m, s and u, not "${flags}"`);
    }
    let re: RegExp;
    try {
      re = new RegExp(source, flags);
    } catch (error) {
      throw new InvalidTagFilterError(
        pattern,
        `not a valid regular expression (${(error as Error).message})`,
      );
    }
    return (tag) => re.test(tag);
  }
  try {
    // strictBrackets makes an unbalanced bracket an error instead of a literal character.
    const isMatch = picomatch(pattern, { dot: true, strictBrackets: true });
    return (tag) => isMatch(tag);
  } catch (error) {
    throw new InvalidTagFilterError(pattern, `not a valid glob (${(error as Error).message})`);
  }
}

function anyOf(patterns: readonly string[] | undefined): TagMatcher | undefined {
  if (patterns === undefined || patterns.length === 0) return undefined;
  if (!Array.isArray(patterns)) {
    throw new InvalidTagFilterError(String(patterns), "patterns must be a list");
  }
  const matchers = patterns.map(compilePattern);
  return (tag) => matchers.some((m) => m(tag));
}

/**
 * Checks and compiles a filter; throws InvalidTagFilterError naming the first bad pattern
 * or setting. The result keeps the listing's order among the tags it keeps.
 */
export function compileTagFilter(filter: TagFilterOptions | undefined): CompiledTagFilter {
  if (filter === undefined) return (tags) => [...tags];
  const include = anyOf(filter.include);
  const exclude = anyOf(filter.exclude);
  const { maxTags } = filter;
  if (maxTags !== undefined && !(Number.isSafeInteger(maxTags) && maxTags >= 0)) {
    throw new InvalidTagFilterError(
      `maxTags: ${String(maxTags)}`,
      "maxTags must be a non-negative integer",
    );
  }
  const order = filter.order ?? "semver";
  if (order !== "semver" && order !== "listing") {
    throw new InvalidTagFilterError(
      `order: ${String(order)}`,
      'order must be "semver" or "listing"',
    );
  }
  return (tags) => {
    const kept = tags.filter(
      (tag) => (include === undefined || include(tag)) && !(exclude?.(tag) ?? false),
    );
    if (maxTags === undefined || kept.length <= maxTags) return kept;
    if (order === "listing") return maxTags === 0 ? [] : kept.slice(kept.length - maxTags);
    const newest = new Set([...kept].sort(compareTagsBySemverDesc).slice(0, maxTags));
    return kept.filter((tag) => newest.has(tag));
  };
}

/**
 * The tags of a listing that the filter keeps, in listing order (all of them without a
 * filter). Throws InvalidTagFilterError for a bad filter; compile once with
 * compileTagFilter to check a filter up front.
 */
export function filterTags(tags: readonly string[], filter?: TagFilterOptions): string[] {
  return compileTagFilter(filter)(tags);
}
