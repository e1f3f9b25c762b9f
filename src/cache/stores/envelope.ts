/**
 * The small versioned envelope every store wraps its values in: magic, version, refresh
 * deadline, payload. A value that does not decode is reported so the store can treat it
 * as a miss (and warn) instead of failing.
 */
import type { StoreEntry } from "../store.js";
import { InvalidDeadlineError } from "./errors.js";
import type { StoreLogger } from "./options.js";

/** "RSC" then the format version; bumping the version turns old values into misses. */
const MAGIC = [0x52, 0x53, 0x43] as const;
/** The current envelope format version. */
export const ENVELOPE_VERSION = 1;
const HEADER_BYTES = MAGIC.length + 1 + 8;

/** How long a store keeps a value at least, so it can be served while it is refreshed. */
export const MIN_EXPIRY_MS = 60 * 60 * 1000;

/** A decoded envelope. */
export interface Envelope {
  deadline: Date;
  value: Uint8Array;
}

/** Why a stored value did not decode. */
export type EnvelopeProblem = "too short" | "bad magic" | "unknown version" | "bad deadline";

/**
 * Wraps `value` with its refresh `deadline`.
 *
 * @throws InvalidDeadlineError when `deadline` is an Invalid Date.
 */
export function encodeEnvelope(deadline: Date, value: Uint8Array): Buffer {
  if (!Number.isFinite(deadline.getTime())) throw new InvalidDeadlineError();
  const out = Buffer.allocUnsafe(HEADER_BYTES + value.byteLength);
  out[0] = MAGIC[0];
  out[1] = MAGIC[1];
  out[2] = MAGIC[2];
  out[3] = ENVELOPE_VERSION;
  out.writeDoubleBE(deadline.getTime(), 4);
  out.set(value, HEADER_BYTES);
  return out;
}

/** Unwraps a stored value, or says why it is not one of ours. */
export function decodeEnvelope(
  stored: Uint8Array,
): { ok: true; envelope: Envelope } | { ok: false; problem: EnvelopeProblem } {
  if (stored.byteLength < HEADER_BYTES) return { ok: false, problem: "too short" };
  if (stored[0] !== MAGIC[0] || stored[1] !== MAGIC[1] || stored[2] !== MAGIC[2]) {
    return { ok: false, problem: "bad magic" };
  }
  if (stored[3] !== ENVELOPE_VERSION) return { ok: false, problem: "unknown version" };
  const view = new DataView(stored.buffer, stored.byteOffset, stored.byteLength);
  const ms = view.getFloat64(4, false);
  if (!Number.isFinite(ms)) return { ok: false, problem: "bad deadline" };
  // A view, not a copy: nearly every value is decoded at once and dropped, and a copy each
  // (an ArrayBuffer of its own, and its garbage) made an API read of an 80-tag repository
  // that misses the answer cache cost 7-13% more CPU on the API thread's heap limits (`npm
  // run bench answer-misses`). Whoever keeps a value copies it.
  const value = new Uint8Array(
    stored.buffer,
    stored.byteOffset + HEADER_BYTES,
    stored.byteLength - HEADER_BYTES,
  );
  return { ok: true, envelope: { deadline: new Date(ms), value } };
}

/**
 * The entry a stored value holds, or `undefined` (a miss) with a warning naming `key` when
 * it does not decode: every store treats foreign or outdated values this way.
 */
export function entryOrWarn(
  key: string,
  stored: Uint8Array,
  logger: StoreLogger,
): StoreEntry | undefined {
  const decoded = decodeEnvelope(stored);
  if (decoded.ok) return decoded.envelope;
  logger.warn({ key, problem: decoded.problem }, "cache value does not decode; a miss");
  return undefined;
}

/**
 * How long the store keeps a value written now with `deadline`: twice the time to the
 * deadline, at least an hour (DESIGN.md section 5); or `keepMs` when the writer says so
 * (`SetOptions.keepMs`: a derived value worth little once old), at least a millisecond.
 */
export function expiryMs(
  deadline: Date,
  now: number = Date.now(),
  keepMs: number | undefined = undefined,
): number {
  if (keepMs !== undefined && Number.isFinite(keepMs)) return Math.max(1, keepMs);
  return Math.max(2 * (deadline.getTime() - now), MIN_EXPIRY_MS);
}
