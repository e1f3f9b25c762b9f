import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseImageName } from "../../src/image/ref.js";
import { DEFAULT_IMAGE_EXCLUDES, globToRegExp, ImageFilter } from "../../src/sources/image-glob.js";

describe("ImageFilter", () => {
  test("Flux v1's default exclusion drops k8s.gcr.io images at any depth", () => {
    const filter = new ImageFilter([], DEFAULT_IMAGE_EXCLUDES);
    assert.equal(filter.accepts(parseImageName("k8s.gcr.io/pause")), false);
    assert.equal(filter.accepts(parseImageName("k8s.gcr.io/a/b")), false);
    assert.equal(filter.accepts(parseImageName("registry.k8s.io/pause")), true);
  });

  test("includes match canonical or familiar names; excludes win", () => {
    const filter = new ImageFilter(["alpine", "ghcr.io/org/*"], ["ghcr.io/org/private-*"]);
    assert.equal(filter.accepts(parseImageName("alpine")), true);
    assert.equal(filter.accepts(parseImageName("docker.io/library/alpine")), true);
    assert.equal(filter.accepts(parseImageName("busybox")), false);
    assert.equal(filter.accepts(parseImageName("ghcr.io/org/app")), true);
    assert.equal(filter.accepts(parseImageName("ghcr.io/org/private-x")), false);
  });

  test("glob special characters other than * and ? are literal", () => {
    assert.equal(globToRegExp("a.b+c").test("a.b+c"), true);
    assert.equal(globToRegExp("a.b+c").test("aXb+c"), false);
    assert.equal(globToRegExp("v?").test("v1"), true);
  });
});
