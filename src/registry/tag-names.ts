/**
 * The tag grammar of the OCI distribution spec, `[\w][\w.-]{0,127}`, for tags a registry
 * lists: anything else (a path, an escape sequence, a 10,000-character string) is dropped,
 * and shown only escaped, so that a hostile registry can neither steer requests nor write to
 * a terminal.
 */

const TAG = /^[\w][\w.-]{0,127}$/;

/** Whether `tag` is a tag by the distribution spec's grammar. */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Longest part of a refused tag shown in a message. */
const SHOWN_CHARS = 64;

/**
 * A refused tag as it may be logged: every character outside printable ASCII written as
 * `\u{...}` (so no escape sequence, control or bidi character survives), and shortened.
 */
export function escapeTag(tag: string): string {
  const chars = [...tag];
  const shown = chars
    .slice(0, SHOWN_CHARS)
    .map((c) =>
      /^[\x20-\x7e]$/.test(c) && c !== "\\" ? c : `\\u{${c.codePointAt(0)?.toString(16)}}`,
    )
    .join("");
  return chars.length > SHOWN_CHARS ? `${shown}… (${chars.length} characters)` : shown;
}

/** Tags refused from one listing: how many, and a few of them, escaped. */
export interface InvalidTagsReport {
  host: string;
  repository: string;
  count: number;
  /** Up to five of them, escaped with `escapeTag`. */
  examples: string[];
}

/** Splits a listing into the tags kept and a report of those dropped (undefined: none). */
export function partitionTags(
  tags: readonly string[],
  listing: { host: string; repository: string },
): { valid: string[]; invalid: InvalidTagsReport | undefined } {
  const { host, repository } = listing;
  const valid: string[] = [];
  let count = 0;
  const examples: string[] = [];
  for (const tag of tags) {
    if (isValidTag(tag)) {
      valid.push(tag);
      continue;
    }
    count++;
    if (examples.length < 5) examples.push(escapeTag(tag));
  }
  return { valid, invalid: count === 0 ? undefined : { host, repository, count, examples } };
}
