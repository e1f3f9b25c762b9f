/**
 * A webhook's pushed tags checked against the stored index without listing the repository
 * (a 40,000-tag repository is 400 pages at GHCR-like registries, every push).
 */
import { forEachBounded } from "../bounded-parallel.js";
import { dropMissingImages, dueTags } from "./due-tags.js";
import { summarizeError } from "./error-summary.js";
import type { RepositoryRecord } from "./records.js";
import { ScanIndex } from "./scan-index.js";
import {
  countArtifactTags,
  emptyScanResult,
  finishIndex,
  finishPlan,
  type Scan,
  scanClient,
  tagRefresher,
  writeRecord,
} from "./scan-steps.js";
import type { CompiledTagFilter } from "./tag-filter.js";
import type { TagEvent } from "./warmer-types.js";

/**
 * Checks the tags a webhook says were pushed without listing the repository: a new one is
 * added after the last listing's tags, and the record keeps when the repository was last
 * listed, so its polling goes on as scheduled. Returns false, with no index entry or record
 * written, when the listing scan must run instead: a named tag's bucket unread, or a named
 * tag that fails (gone again, a 429: the listing scan handles each as it does); images
 * fetched meanwhile are stored and reused there. Throws when stopped.
 */
export async function refreshNamedTags(
  s: Scan,
  {
    previous,
    lastListing,
    filter,
  }: { previous: RepositoryRecord; lastListing: string[]; filter: CompiledTagFilter },
): Promise<boolean> {
  const { ctx, job, result, log } = s;
  const named = filter([...new Set(job.options.onlyTags)]);
  if (named.length === 0) {
    // Every named tag filtered out: nothing here changes.
    result.unlisted = true;
    result.tags = lastListing.length;
    return true;
  }
  const index = await ScanIndex.load(ctx, job.name, job.signal);
  if (named.some((tag) => index.unread(tag))) return false;
  const before = new Set(lastListing);
  const added = named.filter((tag) => !before.has(tag));
  const tags = added.length > 0 ? [...lastListing, ...added] : lastListing;
  index.setOrder(tags);
  // Counted apart, and events held apart, until every named tag is in.
  const trial = emptyScanResult(result.repository, result.startedAt);
  const { due, known } = dueTags({
    ctx,
    index,
    tags: named,
    result: trial,
    log,
    everyTagDue: true,
  });
  await dropMissingImages({ ctx, due, known, log, signal: s.controller.signal });
  const events: TagEvent[] = [];
  const { plan, refresher } = await tagRefresher(s, {
    client: scanClient(s),
    index,
    known,
    previous,
    result: trial,
    emit: (event) => events.push(event),
  });
  let failed: unknown;
  await forEachBounded(due, { limit: ctx.burst, signal: s.controller.signal }, async (item) => {
    await refresher.refresh(item).catch((error: unknown) => {
      failed ??= error;
    });
  });
  s.controller.signal.throwIfAborted();
  if (failed !== undefined) {
    log.debug({ error: summarizeError(failed) }, "a pushed tag's check failed; listing instead");
    return false;
  }
  finishPlan(s, plan, trial);
  result.unlisted = true;
  result.tags = tags.length;
  result.filteredOut = previous.filteredOut ?? 0;
  result.artifacts = (previous.artifactTags ?? 0) + countArtifactTags(added);
  result.refreshed = trial.refreshed;
  result.unchanged = trial.unchanged;
  result.excluded = trial.excluded;
  result.fresh = tags.length - due.length;
  result.newTags = trial.newTags;
  result.movedTags = trial.movedTags;
  if (trial.fetchedByTag !== undefined) result.fetchedByTag = trial.fetchedByTag;
  s.events.push(...events);
  const keptAt = await finishIndex(s, { index, previous, keep: new Set(tags) });
  await writeRecord(s, {
    previous,
    listed: tags,
    lastError: undefined,
    imagesKeptAt: keptAt,
    unlisted: true,
  });
  return true;
}
