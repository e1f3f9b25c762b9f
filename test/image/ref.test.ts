/**
 * Table tests for the image-reference parser: every case of test/image/ref-cases.ts, plus
 * the accessors (apiHost, reference) and parseImageName's refusal of tags and digests.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ImageName,
  InvalidImageRefError,
  parseImageName,
  parseImageRef,
} from "../../src/image/ref.js";
import { invalidRefCases, validRefCases } from "./ref-cases.js";

describe("parseImageRef: valid references", () => {
  for (const c of validRefCases) {
    it(`parses ${JSON.stringify(c.input.length > 80 ? `${c.input.slice(0, 77)}...` : c.input)}`, () => {
      const ref = parseImageRef(c.input);
      assert.equal(ref.domain, c.domain);
      assert.equal(ref.path, c.path);
      assert.equal(ref.tag, c.tag);
      assert.equal(ref.digest, c.digest);
      const canonical =
        c.canonical ??
        `${c.domain}/${c.path}${c.tag !== undefined ? `:${c.tag}` : ""}${c.digest !== undefined ? `@${c.digest}` : ""}`;
      assert.equal(ref.toString(), canonical);
      assert.equal(ref.name.toString(), `${c.domain}/${c.path}`);
      assert.equal(ref.familiar(), c.familiar);
      assert.ok(parseImageRef(ref.toString()).equals(ref), "canonical form parses back");
      assert.ok(parseImageRef(ref.familiar()).equals(ref), "familiar form parses back");
    });
  }
});

describe("parseImageRef: invalid references", () => {
  for (const c of invalidRefCases) {
    it(`rejects ${JSON.stringify(c.input.length > 80 ? `${c.input.slice(0, 77)}...` : c.input)} (${c.reason})`, () => {
      assert.throws(
        () => parseImageRef(c.input),
        (err: unknown) => {
          assert.ok(err instanceof InvalidImageRefError, `threw ${String(err)}`);
          assert.equal(err.code, "INVALID_IMAGE_REF");
          assert.equal(err.name, "InvalidImageRefError");
          assert.equal(err.input, c.input);
          assert.ok(err.message.includes(JSON.stringify(c.input)), err.message);
          assert.ok(err.message.includes(c.reason), `${err.message} lacks ${c.reason}`);
          return true;
        },
      );
    });
  }

  it("rejects a non-string from untyped callers with InvalidImageRefError", () => {
    for (const bad of [undefined, null, 42, {}, Object.create(null), Symbol("x")]) {
      assert.throws(() => parseImageRef(bad as unknown as string), InvalidImageRefError);
    }
  });
});

describe("ImageRef accessors", () => {
  it("sends Docker Hub requests to registry-1.docker.io, others to their domain", () => {
    assert.equal(parseImageRef("alpine").apiHost, "registry-1.docker.io");
    assert.equal(parseImageRef("alpine").name.apiHost, "registry-1.docker.io");
    assert.equal(parseImageRef("index.docker.io/a/b").apiHost, "registry-1.docker.io");
    assert.equal(parseImageRef("ghcr.io/a/b").apiHost, "ghcr.io");
    assert.equal(parseImageRef("[::1]:5000/a").apiHost, "[::1]:5000");
  });

  it("asks for the digest when there is one, else the tag, and adds no implicit latest", () => {
    const d = `sha256:${"0".repeat(64)}`;
    assert.equal(parseImageRef(`a:t@${d}`).reference, d);
    assert.equal(parseImageRef("a:t").reference, "t");
    assert.equal(parseImageRef("a").reference, undefined);
    assert.equal(parseImageRef("a").toString(), "docker.io/library/a");
  });

  it("builds tag and digest references from a name", () => {
    const name = parseImageName("user/app");
    assert.equal(name.withTag("v1").toString(), "docker.io/user/app:v1");
    assert.equal(name.withTag("v1").familiar(), "user/app:v1");
    const d = `sha256:${"1".repeat(64)}`;
    assert.equal(name.withDigest(d).familiar(), `user/app@${d}`);
    assert.ok(name.equals(new ImageName("docker.io", "user/app")));
    assert.ok(!name.equals(new ImageName("docker.io", "user/app2")));
  });
});

describe("parseImageName", () => {
  it("parses a repository name and normalises it", () => {
    const name = parseImageName("alpine");
    assert.equal(name.toString(), "docker.io/library/alpine");
    assert.equal(name.familiar(), "alpine");
    assert.equal(parseImageName("localhost:5000/x").toString(), "localhost:5000/x");
  });

  it("rejects a tag or a digest", () => {
    assert.throws(() => parseImageName("alpine:3"), /cannot have a tag/);
    assert.throws(
      () => parseImageName(`alpine@sha256:${"a".repeat(64)}`),
      (e: unknown) => e instanceof InvalidImageRefError && /cannot have a digest/.test(e.message),
    );
    assert.throws(() => parseImageName("Alpine"), InvalidImageRefError);
  });
});

describe("ports", () => {
  it("refuses a port outside 1-65535 at parse time, naming the domain", () => {
    for (const input of [
      "127.0.0.1:99999/x",
      "localhost:0/x",
      "[::1]:65536/x:v1",
      "h.io:00000/a",
    ]) {
      assert.throws(
        () => parseImageRef(input),
        (e: unknown) =>
          e instanceof InvalidImageRefError &&
          e.code === "INVALID_IMAGE_REF" &&
          /port must be between 1 and 65535/.test(e.message) &&
          e.message.includes(JSON.stringify(input)),
        input,
      );
    }
  });

  it("accepts the ends of the range", () => {
    assert.equal(parseImageRef("127.0.0.1:1/x").domain, "127.0.0.1:1");
    assert.equal(parseImageRef("[::1]:65535/x").domain, "[::1]:65535");
    // The URL a client builds from it is valid.
    assert.equal(new URL(`https://${parseImageRef("127.0.0.1:65535/x").domain}/v2/`).port, "65535");
  });
});
