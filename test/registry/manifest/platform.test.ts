/**
 * Platforms: parsing `os/arch[/variant]`, containerd's normalisation, and the choice of an
 * index entry for a wanted platform with its fallbacks.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Platform } from "../../../src/image/info.js";
import {
  choosePlatformDescriptor,
  DEFAULT_PLATFORM,
  formatPlatform,
  InvalidPlatformError,
  normalisePlatform,
  parsePlatform,
  platformsEqual,
} from "../../../src/registry/manifest/platform.js";

const p = (os: string, architecture: string, variant?: string): Platform =>
  variant === undefined ? { os, architecture } : { os, architecture, variant };

describe("platforms", () => {
  it("parses os/arch[/variant], normalised like containerd", () => {
    assert.deepEqual(parsePlatform("linux/amd64"), p("linux", "amd64"));
    assert.deepEqual(parsePlatform("Linux/X86_64"), p("linux", "amd64"));
    assert.deepEqual(parsePlatform("linux/aarch64"), p("linux", "arm64"));
    assert.deepEqual(parsePlatform("linux/arm64/v8"), p("linux", "arm64"));
    assert.deepEqual(parsePlatform("linux/arm"), p("linux", "arm", "v7"));
    assert.deepEqual(parsePlatform("linux/arm/v6"), p("linux", "arm", "v6"));
    assert.deepEqual(parsePlatform("linux/arm/7"), p("linux", "arm", "v7"));
    assert.deepEqual(parsePlatform("windows/amd64"), p("windows", "amd64"));
    for (const bad of [
      "",
      "linux",
      "linux/",
      "/amd64",
      "a/b/c/d",
      "linux/am d64",
      "x".repeat(200),
    ]) {
      assert.throws(() => parsePlatform(bad), InvalidPlatformError, bad);
    }
  });

  it("property: parsePlatform throws only InvalidPlatformError", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          parsePlatform(s);
        } catch (err) {
          assert.ok(err instanceof InvalidPlatformError);
        }
      }),
    );
  });

  it("normalises and compares", () => {
    assert.ok(platformsEqual(p("linux", "arm64"), p("linux", "arm64", "v8")));
    assert.ok(platformsEqual(p("linux", "arm"), p("linux", "arm", "v7")));
    assert.ok(!platformsEqual(p("linux", "arm"), p("linux", "arm", "v6")));
    assert.ok(platformsEqual(p("linux", "x86_64"), p("linux", "amd64")));
    assert.deepEqual(
      normalisePlatform({ os: "linux", architecture: "armhf" }),
      p("linux", "arm", "v7"),
    );
    assert.deepEqual(
      normalisePlatform({ os: "windows", architecture: "amd64", osVersion: "10.0.1" }),
      {
        os: "windows",
        architecture: "amd64",
        osVersion: "10.0.1",
      },
    );
  });

  it("formats", () => {
    assert.equal(formatPlatform(DEFAULT_PLATFORM), "linux/amd64");
    assert.equal(formatPlatform(p("linux", "arm", "v7")), "linux/arm/v7");
  });

  it("chooses the exact platform from an index, then the closest fallback", () => {
    const d = (platform?: Platform) => ({
      platform,
      id: platform ? formatPlatform(platform) : "none",
    });
    const index = [
      d(),
      d(p("linux", "amd64")),
      d(p("linux", "arm64", "v8")),
      d(p("linux", "arm", "v6")),
      d(p("linux", "arm", "v7")),
      d(p("windows", "amd64")),
    ];
    assert.equal(choosePlatformDescriptor(index, DEFAULT_PLATFORM)?.id, "linux/amd64");
    assert.equal(
      choosePlatformDescriptor(index, parsePlatform("linux/arm64"))?.id,
      "linux/arm64/v8",
    );
    assert.equal(choosePlatformDescriptor(index, p("linux", "arm64", "v8"))?.id, "linux/arm64/v8");
    assert.equal(choosePlatformDescriptor(index, p("linux", "arm"))?.id, "linux/arm/v7");
    assert.equal(choosePlatformDescriptor(index, p("linux", "arm", "v6"))?.id, "linux/arm/v6");
    assert.equal(choosePlatformDescriptor(index, p("windows", "amd64"))?.id, "windows/amd64");
    assert.equal(choosePlatformDescriptor(index, p("linux", "s390x")), undefined);
    // arm/v7 runs arm/v6 when there is no v7; arm/v6 does not run v7.
    const old = [d(p("linux", "arm", "v5")), d(p("linux", "arm", "v6"))];
    assert.equal(choosePlatformDescriptor(old, p("linux", "arm", "v7"))?.id, "linux/arm/v6");
    assert.equal(
      choosePlatformDescriptor([d(p("linux", "arm", "v7"))], p("linux", "arm", "v6")),
      undefined,
    );
    // amd64/v3 runs plain amd64; plain amd64 does not run v3.
    assert.equal(
      choosePlatformDescriptor([d(p("linux", "amd64"))], p("linux", "amd64", "v3"))?.id,
      "linux/amd64",
    );
    assert.equal(
      choosePlatformDescriptor([d(p("linux", "amd64", "v3"))], p("linux", "amd64")),
      undefined,
    );
    // arm64 never falls back to 32-bit arm.
    assert.equal(
      choosePlatformDescriptor([d(p("linux", "arm", "v7"))], p("linux", "arm64")),
      undefined,
    );
  });
});
