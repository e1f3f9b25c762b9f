/**
 * Property tests for the image-reference parser: generated valid references round-trip
 * through their canonical and familiar forms, the familiar form is distribution's
 * FamiliarString wherever that parses back, the parser agrees with an independent
 * statement of the distribution grammar on near-valid strings, and nothing but
 * InvalidImageRefError is ever thrown.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { type ImageRef, InvalidImageRefError, parseImageRef } from "../../src/image/ref.js";
import { distributionFamiliar, distributionParse } from "./distribution-oracle.js";

const pathComponent = fc.stringMatching(/^[a-z0-9]{1,4}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,4}){0,2}$/);
const dnsLabel = fc.stringMatching(/^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]{0,4}[a-zA-Z0-9])$/);
const port = fc.integer({ min: 1, max: 65535 }).map((p) => `:${p}`);
const domain = fc.oneof(
  fc
    .tuple(fc.array(dnsLabel, { minLength: 2, maxLength: 3 }), fc.option(port, { nil: "" }))
    .map(([labels, p]) => `${labels.join(".")}${p}`),
  fc.tuple(dnsLabel, port).map(([l, p]) => `${l}${p}`),
  fc.option(port, { nil: "" }).map((p) => `localhost${p}`),
  fc
    .tuple(fc.stringMatching(/^[a-fA-F0-9]{0,4}:[a-fA-F0-9:]{0,10}$/), fc.option(port, { nil: "" }))
    .map(([h, p]) => `[${h}]${p}`),
  fc.stringMatching(/^[A-Z][a-zA-Z0-9]{0,5}$/),
  fc.constantFrom("docker.io", "index.docker.io"),
);
const path = fc.array(pathComponent, { minLength: 1, maxLength: 4 }).map((cs) => cs.join("/"));
const tag = fc.stringMatching(/^\w[\w.-]{0,20}$/);
const digest = fc.oneof(
  fc.stringMatching(/^[a-f0-9]{64}$/).map((h) => `sha256:${h}`),
  fc.stringMatching(/^[a-f0-9]{96}$/).map((h) => `sha384:${h}`),
  fc.stringMatching(/^[a-f0-9]{128}$/).map((h) => `sha512:${h}`),
);
const validText = fc
  .tuple(
    fc.option(domain, { nil: undefined }),
    path,
    fc.option(tag, { nil: undefined }),
    fc.option(digest, { nil: undefined }),
  )
  // Without a domain, a dotted first component would itself be read as a domain.
  .filter(([d, p]) => d !== undefined || !(p.split("/")[0] ?? "").includes("."))
  .map(
    ([d, p, t, g]) =>
      `${d !== undefined ? `${d}/` : ""}${p}${t !== undefined ? `:${t}` : ""}${g !== undefined ? `@${g}` : ""}`,
  );

/** Docker Hub references whose repository is (or starts with) 64 hex digits. */
const hexNameText = fc
  .tuple(
    fc.constantFrom("", "docker.io/", "index.docker.io/", "docker.io/library/"),
    fc.stringMatching(/^[a-f0-9]{64}$/),
    fc.option(fc.constantFrom("/app", "/a/b"), { nil: "" }),
    fc.option(tag, { nil: undefined }),
    fc.option(digest, { nil: undefined }),
  )
  .map(
    ([prefix, hex, more, t, g]) =>
      `${prefix}${hex}${more}${t !== undefined ? `:${t}` : ""}${g !== undefined ? `@${g}` : ""}`,
  );

/** Strings made of the grammar's own characters, so that many are nearly valid. */
const nearlyValid = fc.oneof(
  fc.string({
    unit: fc.constantFrom(..."aAz09._-_/:@[]f".split("")),
    maxLength: 30,
  }),
  fc
    .tuple(validText, fc.nat(40), fc.constantFrom("", "/", ":", "@", ".", "-", "_", "A", "]", "["))
    .map(([s, i, c]) => {
      const at = i % (s.length + 1);
      return `${s.slice(0, at)}${c}${s.slice(at + 1)}`;
    }),
);

function expectOnlyInvalidRef(input: string): ImageRef | undefined {
  try {
    return parseImageRef(input);
  } catch (err) {
    if (!(err instanceof InvalidImageRefError)) throw err;
    assert.equal(err.input, input);
    assert.ok(err.message.startsWith(`invalid image reference ${JSON.stringify(input)}: `));
    return undefined;
  }
}

describe("parseImageRef properties", () => {
  it("parses every generated valid reference, and its canonical and familiar forms parse back equal", () => {
    fc.assert(
      fc.property(fc.oneof(validText, hexNameText), (text) => {
        if (/^[a-f0-9]{64}$/.test(text)) return; // an image ID, not a reference
        const ref = parseImageRef(text);
        assert.ok(parseImageRef(ref.toString()).equals(ref));
        assert.equal(parseImageRef(ref.toString()).toString(), ref.toString());
        assert.ok(parseImageRef(ref.familiar()).equals(ref), `${ref.familiar()} vs ${ref}`);
        assert.ok(ref.familiar().length <= ref.toString().length);
      }),
      { numRuns: 2000 },
    );
  });

  it("prints distribution's FamiliarString, adding docker.io/ only where that would not parse back", () => {
    fc.assert(
      fc.property(fc.oneof(validText, hexNameText), (text) => {
        const parsed = distributionParse(text);
        if (parsed === undefined) return; // a bare 64-hex string: an image ID, refused by both
        const ref = parseImageRef(text);
        const goFamiliar = distributionFamiliar(parsed);
        const readBack = distributionParse(goFamiliar);
        const parsesBack = readBack !== undefined && isDeepStrictEqual(readBack, parsed);
        assert.equal(ref.familiar(), parsesBack ? goFamiliar : `docker.io/${goFamiliar}`);
      }),
      { numRuns: 3000 },
    );
  });

  it("agrees with the distribution grammar on valid and nearly valid strings", () => {
    fc.assert(
      fc.property(fc.oneof(validText, hexNameText, nearlyValid), (text) => {
        const expected = distributionParse(text);
        const got = expectOnlyInvalidRef(text);
        if (expected === undefined) {
          assert.equal(got, undefined, `accepted ${JSON.stringify(text)}: ${got}`);
        } else {
          assert.ok(got, `rejected ${JSON.stringify(text)}`);
          assert.deepEqual(
            { domain: got.domain, path: got.path, tag: got.tag, digest: got.digest },
            expected,
          );
        }
      }),
      { numRuns: 5000 },
    );
  });

  it("throws nothing but InvalidImageRefError for any string", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary", maxLength: 300 }),
          fc.string({ unit: "grapheme-ascii", maxLength: 300 }),
          fc.string({ unit: fc.constantFrom(..."a:/@[]".split("")), maxLength: 600 }),
        ),
        (text) => {
          expectOnlyInvalidRef(text);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("parses a long hostile string quickly", () => {
    const started = performance.now();
    for (const text of [
      `${"a-".repeat(20000)}!`,
      `${"a.".repeat(20000)}/x`,
      `${"a/".repeat(20000)}A`,
      `[${":".repeat(20000)}/x`,
    ]) {
      expectOnlyInvalidRef(text);
    }
    assert.ok(performance.now() - started < 1000);
  });
});
