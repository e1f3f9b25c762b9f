/**
 * Digests: computing, parsing and verifying, and (property) any string either parses or
 * throws `InvalidDigestError`.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { computeDigest, isDigest, parseDigest, verifyDigest } from "../../src/registry/digest.js";
import { DigestMismatchError, InvalidDigestError } from "../../src/registry/errors.js";

const EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

describe("digest", () => {
  it("computes sha256, sha384 and sha512", () => {
    assert.equal(computeDigest(new Uint8Array()), EMPTY_SHA256);
    const bytes = new TextEncoder().encode("hello");
    for (const alg of ["sha384", "sha512"] as const) {
      assert.equal(
        computeDigest(bytes, alg),
        `${alg}:${createHash(alg).update(bytes).digest("hex")}`,
      );
    }
  });

  it("parses good digests and refuses bad ones with InvalidDigestError", () => {
    assert.deepEqual(parseDigest(EMPTY_SHA256), {
      algorithm: "sha256",
      hex: EMPTY_SHA256.slice(7),
    });
    for (const bad of [
      "",
      "sha256",
      "sha256:",
      "sha256:abc",
      EMPTY_SHA256.toUpperCase(),
      `sha256:${"g".repeat(64)}`,
      `md5:${"a".repeat(32)}`,
      `sha512:${"a".repeat(64)}`,
      `${EMPTY_SHA256}\n`,
    ]) {
      assert.throws(() => parseDigest(bad), InvalidDigestError, bad);
      assert.equal(isDigest(bad), false);
    }
  });

  it("verifies bytes, throwing DIGEST_MISMATCH with both digests", () => {
    const bytes = new TextEncoder().encode("manifest");
    const good = computeDigest(bytes);
    assert.equal(verifyDigest(bytes, good), good);
    const sha512 = computeDigest(bytes, "sha512");
    assert.equal(verifyDigest(bytes, sha512), sha512);
    assert.throws(
      () => verifyDigest(bytes, EMPTY_SHA256, { host: "h", repository: "r", what: "manifest" }),
      (err: unknown) =>
        err instanceof DigestMismatchError &&
        err.code === "DIGEST_MISMATCH" &&
        err.expected === EMPTY_SHA256 &&
        err.actual === good &&
        err.host === "h" &&
        /manifest/.test(err.message),
    );
    assert.throws(() => verifyDigest(bytes, "nope"), InvalidDigestError);
  });

  it("property: any string either parses or throws InvalidDigestError", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          parseDigest(s);
        } catch (err) {
          assert.ok(err instanceof InvalidDigestError);
        }
      }),
    );
  });

  it("property: computed digests verify and parse", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 512 }),
        fc.constantFrom("sha256", "sha384", "sha512" as const),
        (b, alg) => {
          const d = computeDigest(b, alg);
          assert.equal(isDigest(d), true);
          assert.equal(verifyDigest(b, d), d);
        },
      ),
    );
  });
});
