/**
 * The largest tag-list page (`n`) each registry host accepts, learnt from its refusals, so
 * that a host that refused a page size once is asked for one it takes from then on. Shared
 * by every client of a factory.
 */

/**
 * Answers that refuse a page size, and the size to ask for instead. Quay: `n` above 100
 * gets `TOO_MANY_TAGS_REQUESTED` (quay/quay `endpoints/v2/errors.py`, HTTP 413; some
 * versions answer 400). ECR: `n` above 1,000 gets 405 (renovate's docker datasource retries
 * with `n=1000` on ECR's "maxResults" error, lib/modules/datasource/docker/index.ts).
 */
export const PAGE_SIZE_REFUSALS: readonly {
  statuses: readonly number[];
  /** The registry error code that must come with the status, when one is required. */
  code?: string;
  pageSize: number;
}[] = [
  { statuses: [413, 400], code: "TOO_MANY_TAGS_REQUESTED", pageSize: 100 },
  { statuses: [405], pageSize: 1000 },
];

/** Per-host page-size caps (host names compared without case). */
export class TagPageCaps {
  readonly #caps = new Map<string, number>();

  /** The cap learnt for `host`, if any. */
  get(host: string): number | undefined {
    return this.#caps.get(host.toLowerCase());
  }

  /** `host` refused pages larger than `pageSize`: caps only ever shrink. */
  learn(host: string, pageSize: number): void {
    const key = host.toLowerCase();
    const known = this.#caps.get(key);
    if (known === undefined || pageSize < known) this.#caps.set(key, pageSize);
  }
}

/**
 * The page size to retry with when an answer refused the one asked for (`requested`), or
 * `undefined` when the answer is not such a refusal (or the smaller size was asked already).
 */
export function pageSizeAfterRefusal(
  status: number,
  registryCodes: readonly string[],
  requested: number,
): number | undefined {
  for (const refusal of PAGE_SIZE_REFUSALS) {
    if (!refusal.statuses.includes(status)) continue;
    if (refusal.code !== undefined && !registryCodes.includes(refusal.code)) continue;
    if (requested > refusal.pageSize) return refusal.pageSize;
  }
  return undefined;
}
