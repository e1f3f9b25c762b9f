/**
 * Per-repository warmer options from the configuration: each repository's tag filter,
 * platform and interval, falling back to the `defaults` section. Names and filters were
 * already checked when the configuration was loaded (see config/schema.ts).
 */
import type { RepositoryOptions } from "../cache/warmer-types.js";
import type { Config, TagFilterConfig } from "../config/schema.js";
import { toTagFilterOptions } from "../config/tag-filter-options.js";
import { parseImageRef } from "../image/ref.js";
import { parsePlatform } from "../registry/manifest/platform.js";

/** Options by canonical repository name, and the function the warmer asks. */
export interface RepositoryOptionsTable {
  /** Canonical names of the configuration's repositories, in order, without duplicates. */
  names: string[];
  /** The options of a repository; the `defaults` section's for one not listed. */
  optionsFor(repository: string): RepositoryOptions | undefined;
}

/** Builds the table from a validated configuration. */
export function repositoryOptions(config: Config): RepositoryOptionsTable {
  const byName = new Map<string, RepositoryOptions>();
  const names: string[] = [];
  const fallback = toOptions(config.defaults.tags, undefined, config.defaults.interval);
  for (const repo of config.repositories) {
    const canonical = parseImageRef(repo.name).name.toString();
    if (!byName.has(canonical)) names.push(canonical);
    byName.set(
      canonical,
      toOptions(
        repo.tags ?? config.defaults.tags,
        repo.platform,
        repo.interval ?? config.defaults.interval,
      ),
    );
  }
  return {
    names,
    optionsFor: (repository) => byName.get(repository) ?? fallback,
  };
}

function toOptions(
  tags: TagFilterConfig | undefined,
  platform: string | undefined,
  intervalMs: number | undefined,
): RepositoryOptions {
  const out: RepositoryOptions = {};
  if (tags) out.tagFilter = toTagFilterOptions(tags);
  if (platform) out.platform = parsePlatform(platform);
  if (intervalMs !== undefined) out.intervalMs = intervalMs;
  return out;
}
