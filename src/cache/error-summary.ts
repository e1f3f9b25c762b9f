/**
 * Turns whatever a client or store threw into the `{code, message}` the cache keeps as a
 * repository's last error, and recognises the codes the warmer treats specially.
 */
import type { RegscanErrorCode } from "../errors.js";
import type { ErrorSummary } from "./warmer-types.js";

/** The registry said to slow down: the warmer abandons the repository until next time. */
export const TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS" satisfies RegscanErrorCode;
/** The tag vanished between the listing and the fetch: counts as done (as in Flux v1). */
export const MANIFEST_UNKNOWN = "MANIFEST_UNKNOWN" satisfies RegscanErrorCode;

/** The stable code of an error: its `code` when it has a string one, else `UNKNOWN`. */
export function errorCode(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "string" && code.length > 0) return code;
  }
  if (error instanceof Error && error.name === "AbortError") return "ABORTED";
  return "UNKNOWN";
}

/**
 * The error as kept in the store. regscan's own errors never carry secrets in their
 * messages; the message is also bounded so a huge registry error body cannot bloat records.
 */
export function summarizeError(error: unknown): ErrorSummary {
  const message = error instanceof Error ? error.message : String(error);
  return { code: errorCode(error), message: message.slice(0, 1000) };
}
