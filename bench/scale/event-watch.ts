/**
 * Follows a replica's `GET /v1/events` for the staleness measure: each tag event names a
 * repository worth reading now, instead of at the next round of polls. The events only say
 * when to look; a change counts as seen when a read of the repository shows it.
 */

/** What `onRepository` is told for each `new-tag` / `moved-tag` event. */
export interface WatchedEvent {
  repository: string;
  tag: string | undefined;
}

/**
 * Reads the event stream of `api` until `signal` aborts, calling `onEvent` for each tag
 * event. Resolves when the stream ends or is aborted; a stream that breaks is not reopened
 * (the polls still see every change, later).
 */
export async function watchEvents(
  api: string,
  onEvent: (event: WatchedEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${api}/v1/events`, { signal });
  } catch {
    return;
  }
  if (res.body === null || res.status !== 200) return;
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      // One message per blank line (the server writes `\n` line ends only).
      for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
        const message = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = message
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data === "") continue;
        try {
          const event = JSON.parse(data) as { repository?: unknown; tag?: unknown };
          if (typeof event.repository === "string") {
            onEvent({
              repository: event.repository,
              tag: typeof event.tag === "string" ? event.tag : undefined,
            });
          }
        } catch {
          // not JSON: not a tag event
        }
      }
    }
  } catch {
    // aborted, or the replica went away
  }
}
