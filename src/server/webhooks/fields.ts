/**
 * Reading untrusted JSON field by field: every accessor checks the type and length of what
 * it returns and throws `InvalidWebhookBodyError` naming the field, so that parsers stay
 * short and never let a value of the wrong shape through.
 */
import { InvalidImageRefError, parseImageName, parseImageRef } from "../../image/ref.js";
import { InvalidWebhookBodyError } from "./errors.js";

/** A JSON object whose fields are not yet known. */
export type JsonObject = { readonly [key: string]: unknown };

const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha(?:256:[a-f0-9]{64}|384:[a-f0-9]{96}|512:[a-f0-9]{128})$/;
/** Longest string any field may hold; real fields are far shorter. */
const MAX_STRING = 4096;
/** Most entries read from one list (events, resources, tags). */
export const MAX_ENTRIES = 1000;
// Between 2000 and 2100: anything outside is a wrong unit or a forged field, not a push time.
const EARLIEST = Date.UTC(2000, 0, 1);
const LATEST = Date.UTC(2100, 0, 1);

/** Reads fields of one body, naming its kind in every error. */
export class Fields {
  constructor(readonly kind: string) {}

  fail(field: string, reason: string): never {
    throw new InvalidWebhookBodyError(this.kind, field, reason);
  }

  /** Parses the body as JSON; any failure is an `InvalidWebhookBodyError`. */
  json(text: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // JSON.parse's message quotes the input; say only what was wrong.
      return this.fail("", "not valid JSON");
    }
  }

  object(value: unknown, field: string): JsonObject {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.fail(field, `expected an object, got ${describe(value)}`);
    }
    return value as JsonObject;
  }

  optionalObject(value: unknown, field: string): JsonObject | undefined {
    return value === undefined || value === null ? undefined : this.object(value, field);
  }

  array(value: unknown, field: string): readonly unknown[] {
    if (!Array.isArray(value)) this.fail(field, `expected a list, got ${describe(value)}`);
    if (value.length > MAX_ENTRIES) {
      this.fail(field, `${value.length} entries, more than ${MAX_ENTRIES}`);
    }
    return value;
  }

  string(value: unknown, field: string, max = MAX_STRING): string {
    if (typeof value !== "string") this.fail(field, `expected a string, got ${describe(value)}`);
    if (value.length > max) this.fail(field, `longer than ${max} characters`);
    return value;
  }

  /** A string, or undefined when the field is absent, null or empty. */
  optionalString(value: unknown, field: string, max = MAX_STRING): string | undefined {
    if (value === undefined || value === null || value === "") return undefined;
    return this.string(value, field, max);
  }

  /** A tag as the distribution grammar allows it. */
  tag(value: unknown, field: string): string {
    const tag = this.string(value, field, 128);
    if (!TAG.test(tag)) this.fail(field, `invalid tag ${quote(tag)}`);
    return tag;
  }

  optionalTag(value: unknown, field: string): string | undefined {
    return value === undefined || value === null || value === ""
      ? undefined
      : this.tag(value, field);
  }

  /** A repository name (no tag, no digest), checked by the image reference parser. */
  repository(value: unknown, field: string): string {
    const name = this.string(value, field, 512);
    try {
      parseImageName(name);
    } catch (err) {
      this.fail(field, reasonOf(err, name));
    }
    return name;
  }

  /**
   * Splits `HOST/PATH[:TAG][@DIGEST]` into its repository and tag, keeping the repository
   * as written (the reference parser only checks it).
   */
  reference(value: unknown, field: string): { repository: string; tag?: string; digest?: string } {
    const text = this.string(value, field, 1024);
    let tag: string | undefined;
    let digest: string | undefined;
    try {
      const ref = parseImageRef(text);
      tag = ref.tag;
      digest = ref.digest;
    } catch (err) {
      this.fail(field, reasonOf(err, text));
    }
    let repository = text;
    if (digest !== undefined) repository = repository.slice(0, repository.lastIndexOf("@"));
    if (tag !== undefined) repository = repository.slice(0, repository.lastIndexOf(":"));
    // Only the parts the reference has are keys, as in the events built from it.
    const out: { repository: string; tag?: string; digest?: string } = { repository };
    if (tag !== undefined) out.tag = tag;
    if (digest) out.digest = digest;
    return out;
  }
}

/** A digest when it is well formed, else nothing: digests are informational only. */
export function digestOrNothing(value: unknown): string | undefined {
  return typeof value === "string" && DIGEST.test(value) ? value : undefined;
}

/** An RFC 3339 time or Unix seconds, when plausible; else nothing (it is informational). */
export function timeOrNothing(value: unknown): Date | undefined {
  let ms: number;
  if (typeof value === "number") ms = value * 1000;
  else if (typeof value === "string" && value.length <= 64 && /^\d{4}-\d\d-\d\dT/.test(value)) {
    ms = Date.parse(value);
  } else return undefined;
  if (!Number.isFinite(ms) || ms < EARLIEST || ms > LATEST) return undefined;
  return new Date(ms);
}

/** Copies only the optional fields that have a value (for `exactOptionalPropertyTypes`). */
export function defined<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = v;
  return out as T;
}

function reasonOf(err: unknown, text: string): string {
  if (err instanceof InvalidImageRefError) {
    // The parser's message quotes the whole input; keep only its reason, quoted bounded.
    const reason = err.message.slice(
      `invalid image reference ${JSON.stringify(err.input)}: `.length,
    );
    return `invalid repository ${quote(text)}: ${reason}`;
  }
  return `invalid repository ${quote(text)}`;
}

/** Quotes untrusted text for a message, bounded so that a message stays short. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
