/**
 * Content digests (`sha256:<hex>` and friends): parsing, computing and verifying them, so
 * that every manifest and blob regscan reports is checked against the bytes it received.
 */
import { createHash } from "node:crypto";
import { DigestMismatchError, InvalidDigestError, type RegistryErrorContext } from "./errors.js";

/** The algorithms regscan computes and verifies. */
export type DigestAlgorithm = "sha256" | "sha384" | "sha512";

/** Hex length of each supported algorithm's encoded part. */
const HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = {
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

/** A digest split into its parts. */
export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  /** Lower-case hex. */
  hex: string;
}

// The OCI grammar: algorithm-component(s) ":" encoded.
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Why `digest` is not a well-formed digest of a supported algorithm, or undefined if it is. */
function digestProblem(digest: string): string | undefined {
  if (typeof digest !== "string" || digest.length > 200 || !DIGEST_GRAMMAR.test(digest)) {
    return "not a digest";
  }
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (!(algorithm in HEX_LENGTH)) return `unsupported algorithm ${algorithm}`;
  const alg = algorithm as DigestAlgorithm;
  if (hex.length !== HEX_LENGTH[alg] || !/^[0-9a-f]+$/.test(hex)) {
    return `${alg} needs ${HEX_LENGTH[alg]} lower-case hex digits`;
  }
  return undefined;
}

/**
 * Parses a digest of a supported algorithm; throws `InvalidDigestError` (and nothing else)
 * for anything malformed, upper-case hex included, or for another algorithm.
 */
export function parseDigest(digest: string, ctx: RegistryErrorContext = {}): ParsedDigest {
  const reason = digestProblem(digest);
  if (reason !== undefined) {
    throw new InvalidDigestError({ ...ctx, digest: String(digest), reason });
  }
  const colon = digest.indexOf(":");
  return { algorithm: digest.slice(0, colon) as DigestAlgorithm, hex: digest.slice(colon + 1) };
}

/** Whether a string is a well-formed digest of a supported algorithm (no exception built). */
export function isDigest(digest: string): boolean {
  return digestProblem(digest) === undefined;
}

/** The digest of some bytes, e.g. `sha256:e3b0c442...`. */
export function computeDigest(bytes: Uint8Array, algorithm: DigestAlgorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** Context for `verifyDigest`: where the bytes came from and what they are. */
export interface DigestContext extends RegistryErrorContext {
  /** What was hashed, e.g. `manifest` or `config blob`. */
  what?: string;
}

/**
 * Checks that bytes hash to `expected` (using `expected`'s algorithm) and returns the
 * digest. Throws `DigestMismatchError` when they do not, `InvalidDigestError` when
 * `expected` is not a digest.
 */
export function verifyDigest(bytes: Uint8Array, expected: string, ctx: DigestContext = {}): string {
  const { algorithm } = parseDigest(expected, ctx);
  const actual = computeDigest(bytes, algorithm);
  if (actual !== expected) {
    throw new DigestMismatchError({ ...ctx, expected, actual });
  }
  return actual;
}
