/**
 * RFC 3339 timestamps, the text form of every time regscan writes or reads in JSON and in
 * timestamp labels. Parsing is strict (no bare dates, no missing offsets) so that a
 * malformed label is reported rather than silently read in local time.
 */

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 date-time (e.g. `2024-01-02T03:04:05.678+01:00`), or returns undefined
 * when the text is not one. Fractions finer than a millisecond are truncated; leap seconds
 * (`:60`), which a `Date` cannot hold, are refused.
 */
export function parseRfc3339(text: string): Date | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const millis = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const offHours = Number(m[10]);
    const offMinutes = Number(m[11]);
    if (offHours > 23 || offMinutes > 59) return undefined;
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (offHours * 60 + offMinutes);
  }
  // Date.UTC reads years 0..99 as 1900..1999, so the year is set on its own.
  const local = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, millis));
  local.setUTCFullYear(year);
  return new Date(local.getTime() - offsetMinutes * 60_000);
}

/** Formats a date as RFC 3339 in UTC with milliseconds; undefined for an invalid date. */
export function formatRfc3339(date: Date): string | undefined {
  const ms = date.getTime();
  if (Number.isNaN(ms)) return undefined;
  const iso = date.toISOString();
  // toISOString writes years outside 0..9999 with a sign and six digits, which RFC 3339
  // does not allow.
  return RFC3339.test(iso) ? iso : undefined;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return leap ? 29 : 28;
  }
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
