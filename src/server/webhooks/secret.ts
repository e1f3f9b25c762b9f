/**
 * Webhook secrets: read from `env:NAME` or `file:PATH` (a regular file, size-bounded), held
 * so that no `toString`, `JSON.stringify` or `util.inspect` shows them, and compared in
 * constant time.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { inspect } from "node:util";
import {
  BoundedFileError,
  readBoundedTextFile,
  TOKEN_FILE_MAX_BYTES,
} from "../../files/bounded-file.js";
import { WebhookSecretError } from "./errors.js";

/** Where a secret is read from: `env:NAME` or `file:PATH`. */
export const SECRET_SOURCE = /^(?:env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/;

const MASK = "WebhookSecret(********)";

/** A secret value; it never prints itself. */
export class WebhookSecret {
  readonly #value: Buffer;
  readonly #digest: Buffer;

  constructor(value: string | Buffer) {
    this.#value = Buffer.from(value);
    this.#digest = sha256(this.#value);
  }

  /** True when `given` is the secret; the time taken does not depend on how much matched. */
  equals(given: string | Buffer | undefined): boolean {
    // Hashing both sides gives equal lengths whatever was sent.
    const ok = timingSafeEqual(sha256(Buffer.from(given ?? "")), this.#digest);
    return ok && given !== undefined;
  }

  /** True when `signatureHex` is HMAC-SHA256 of `body` under this secret, as hex. */
  signs(body: Buffer, signatureHex: string | undefined): boolean {
    const expected = createHmac("sha256", this.#value).update(body).digest();
    const wellFormed = signatureHex !== undefined && /^[0-9a-fA-F]{64}$/.test(signatureHex);
    // A malformed signature is still compared (against zeros), so that it costs the same.
    const given = wellFormed ? Buffer.from(signatureHex, "hex") : Buffer.alloc(expected.length);
    return timingSafeEqual(given, expected) && wellFormed;
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [inspect.custom](): string {
    return MASK;
  }
}

/**
 * Reads a secret from `env:NAME` or `file:PATH`. A file's trailing newline is dropped (as
 * `echo` and Kubernetes secrets leave one). Errors name the source, never the value.
 */
export async function readWebhookSecret(
  source: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<WebhookSecret> {
  let text: string;
  if (source.startsWith("env:")) {
    const name = source.slice(4);
    const value = Object.hasOwn(env, name) ? env[name] : undefined;
    if (value === undefined) throw new WebhookSecretError(source, "the variable is not set");
    text = value;
  } else if (source.startsWith("file:")) {
    text = await readSecretFile(source, source.slice(5));
  } else {
    // Not a source: perhaps the secret itself, written where its source belongs. Not shown.
    throw new WebhookSecretError("source", 'expected "env:NAME" or "file:PATH"');
  }
  text = text.replace(/\r?\n$/, "");
  if (text === "") throw new WebhookSecretError(source, "empty");
  return new WebhookSecret(text);
}

async function readSecretFile(source: string, path: string): Promise<string> {
  try {
    return await readBoundedTextFile(path, TOKEN_FILE_MAX_BYTES);
  } catch (err) {
    const reason =
      err instanceof BoundedFileError
        ? err.reason
        : `cannot read: ${(err as NodeJS.ErrnoException).code ?? "error"}`;
    throw new WebhookSecretError(source, reason);
  }
}

function sha256(data: Buffer): Buffer {
  return createHash("sha256").update(data).digest();
}
