/**
 * A reader that goes away (`regscan tags ... | head`, or Ctrl-C reaching `cat` in
 * `regscan scan ... | cat`) closes the pipe under stdout. Node ignores SIGPIPE, so the next
 * write fails with EPIPE as an 'error' event, which, unheard, crashed the CLI with a stack
 * trace. Here it ends the output quietly instead: nothing more is written there, and the
 * exit status stays the command's own (0 when its work succeeded).
 */
import type { Writable } from "node:stream";

const guarded = new WeakSet<Writable>();

/** Whether `err` says the other end of the pipe (or socket) is gone. */
function isClosedPipe(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "EPIPE" || code === "ERR_STREAM_DESTROYED";
}

/**
 * Makes a closed pipe under `stream` end its output quietly. Any other write error is left
 * to surface as before: a full disk behind a redirect is a real failure.
 */
export function endQuietlyOnClosedPipe(stream: Writable): void {
  if (guarded.has(stream)) return;
  guarded.add(stream);
  stream.on("error", (err: unknown) => {
    if (isClosedPipe(err)) return;
    // Rethrown from the listener: what an 'error' event without one would have done.
    throw err;
  });
}
