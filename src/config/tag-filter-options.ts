/**
 * The bridge between a tag filter as written in the configuration file (`max`, a positive
 * count) and the cache's `TagFilterOptions` (`maxTags`), kept in one place so that the
 * schema's check and the daemon's warmer options can never map the fields differently.
 */
import type { TagFilterOptions } from "../cache/tag-filter.js";

/** A tag filter as the configuration file spells it. */
export interface TagFilterSetting {
  include?: string[] | undefined;
  exclude?: string[] | undefined;
  /** Keep at most this many tags; `maxTags` in `TagFilterOptions`. */
  max?: number | undefined;
  order?: "semver" | "listing" | undefined;
}

/** The cache's filter options for a configured filter: `max` becomes `maxTags`. */
export function toTagFilterOptions(setting: TagFilterSetting): TagFilterOptions {
  const out: TagFilterOptions = {};
  if (setting.include !== undefined) out.include = setting.include;
  if (setting.exclude !== undefined) out.exclude = setting.exclude;
  if (setting.max !== undefined) out.maxTags = setting.max;
  if (setting.order !== undefined) out.order = setting.order;
  return out;
}
