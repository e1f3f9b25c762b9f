/**
 * Checks the API's bearer token in constant time, so that response timing does not reveal
 * how much of a guessed token was right.
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** Compares an `Authorization` header with the expected token without leaking timing. */
export class BearerToken {
  readonly #expected: Buffer;

  constructor(token: string) {
    this.#expected = digest(token);
  }

  /** True when `header` is `Bearer <the token>`. */
  accepts(header: string | undefined): boolean {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? "");
    // Hash both sides so that the comparison has the same length whatever was sent.
    const given = digest(m?.[1] ?? "");
    return timingSafeEqual(given, this.#expected) && m !== null;
  }

  toString(): string {
    return "BearerToken(********)";
  }
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
