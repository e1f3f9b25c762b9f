/**
 * Per-repository warmer options from the configuration: each repository's tag filter,
 * platform and interval, falling back to the `defaults` section. Filters are compiled up
 * front so that a bad pattern stops startup with the path of the setting that holds it.
 */
import { compileTagFilter, type TagFilterOptions } from "../cache/tag-filter.js";
import type { RepositoryOptions } from "../cache/warmer-types.js";
import { ConfigError } from "../config/errors.js";
import type { Config, TagFilterConfig } from "../config/schema.js";
import { RegscanError } from "../errors.js";
import type { Platform } from "../image/info.js";
import { parseImageRef } from "../image/ref.js";

/** Options by canonical repository name, and the function the warmer asks. */
export interface RepositoryOptionsTable {
  /** Canonical names of the configuration's repositories, in order, without duplicates. */
  names: string[];
  optionsFor(repository: string): RepositoryOptions | undefined;
}

/** Builds the table; throws `ConfigError` naming the repository entry that is wrong. */
export function repositoryOptions(config: Config, source: string): RepositoryOptionsTable {
  const byName = new Map<string, RepositoryOptions>();
  const names: string[] = [];
  const fallback = toOptions(
    config.defaults.tags,
    undefined,
    config.defaults.interval,
    source,
    "defaults",
  );
  config.repositories.forEach((repo, i) => {
    const path = `repositories[${i}]`;
    let canonical: string;
    try {
      canonical = parseImageRef(repo.name).name.toString();
    } catch (err) {
      throw new ConfigError([
        {
          source,
          path: `${path}.name`,
          message: err instanceof RegscanError ? err.message : String(err),
        },
      ]);
    }
    if (!byName.has(canonical)) names.push(canonical);
    byName.set(
      canonical,
      toOptions(
        repo.tags ?? config.defaults.tags,
        repo.platform,
        repo.interval ?? config.defaults.interval,
        source,
        path,
      ),
    );
  });
  return {
    names,
    optionsFor: (repository) => byName.get(repository) ?? fallback,
  };
}

function toOptions(
  tags: TagFilterConfig | undefined,
  platform: string | undefined,
  intervalMs: number | undefined,
  source: string,
  path: string,
): RepositoryOptions {
  const out: RepositoryOptions = {};
  if (tags) {
    const filter: TagFilterOptions = {
      include: tags.include,
      exclude: tags.exclude,
      maxTags: tags.max,
      order: tags.order,
    };
    try {
      compileTagFilter(filter);
    } catch (err) {
      throw new ConfigError([
        { source, path: `${path}.tags`, message: err instanceof Error ? err.message : String(err) },
      ]);
    }
    out.tagFilter = filter;
  }
  if (platform) out.platform = parsePlatform(platform);
  if (intervalMs !== undefined) out.intervalMs = intervalMs;
  return out;
}

/** `linux/arm64/v8` -> `{ os, architecture, variant }`. */
export function parsePlatform(text: string): Platform {
  const [os = "", architecture = "", variant] = text.split("/");
  return variant ? { os, architecture, variant } : { os, architecture };
}
