/**
 * What the warmer holds about each repository between scans, in a fixed shape with times as
 * epoch milliseconds: one per watched repository, 10,000 of them at issue 13's size, where
 * three Dates each (96 bytes of heap apiece) and `delete`s that turned each object into a
 * dictionary held 4 MB. The public form, {@link RepositoryStatus}, is made on demand.
 */
import type { ErrorSummary, RepositoryStatus } from "./warmer-types.js";

/** One repository's status as the warmer keeps it (see {@link RepositoryStatus}). */
export class HeldStatus {
  tagCount: number | undefined = undefined;
  artifactTags: number | undefined = undefined;
  /** When the tag list was last fetched successfully (ms). */
  lastUpdate: number | undefined = undefined;
  lastError: ErrorSummary | undefined = undefined;
  /** When the last scan, by any warmer sharing the store, started (ms). */
  lastScanned: number | undefined = undefined;
  /** When this warmer scans it next, at the earliest (ms). */
  nextRefresh: number | undefined = undefined;
  intervalMs: number | undefined = undefined;
  /** When its last scan gave its lease up to a refresh (ms), until the next scan starts. */
  yieldedAt: number | undefined = undefined;
  scanning = false;

  constructor(readonly repository: string) {}

  /** The public form, showing `intervalMs` (the warmer's choice when none was applied yet). */
  view(intervalMs: number): RepositoryStatus {
    const out: RepositoryStatus = {
      repository: this.repository,
      intervalMs,
      scanning: this.scanning,
    };
    if (this.tagCount !== undefined) out.tagCount = this.tagCount;
    if (this.artifactTags !== undefined) out.artifactTags = this.artifactTags;
    if (this.lastUpdate !== undefined) out.lastUpdate = new Date(this.lastUpdate);
    if (this.lastError !== undefined) out.lastError = this.lastError;
    if (this.lastScanned !== undefined) out.lastScanned = new Date(this.lastScanned);
    if (this.nextRefresh !== undefined) out.nextRefresh = new Date(this.nextRefresh);
    return out;
  }
}
