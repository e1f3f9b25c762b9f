/**
 * Reads the entries of a multi-entry body (events, resources, tags) one by one: an entry
 * that does not validate is skipped so that the others still count, and a body whose every
 * entry was invalid is refused with the first entry's error.
 */
import { InvalidWebhookBodyError } from "../errors.js";
import type { NormalisedEvent } from "../event.js";

/** The events of a body and how many of its entries were refused. */
export interface ParsedBody {
  events: NormalisedEvent[];
  /** Entries skipped because they did not validate. */
  rejected: number;
}

/** Maps each entry to events (none when it is not a change regscan cares about). */
export function collect<T>(
  entries: readonly T[],
  read: (entry: T, index: number) => NormalisedEvent[],
): ParsedBody {
  const events: NormalisedEvent[] = [];
  let rejected = 0;
  let first: InvalidWebhookBodyError | undefined;
  entries.forEach((entry, index) => {
    try {
      events.push(...read(entry, index));
    } catch (err) {
      if (!(err instanceof InvalidWebhookBodyError)) throw err;
      rejected += 1;
      first ??= err;
    }
  });
  if (events.length === 0 && first !== undefined) throw first;
  return { events, rejected };
}
