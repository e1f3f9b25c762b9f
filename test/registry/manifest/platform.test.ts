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

const p = ({
  os,
  architecture,
  variant,
}: {
  os: string;
  architecture: string;
  variant?: string;
}): Platform => (variant === undefined ? { os, architecture } : { os, architecture, variant });

describe("platforms", () => {
  it("parses os/arch[/variant], normalised like containerd", () => {
    assert.deepEqual(parsePlatform("linux/amd64"), p({ os: "linux", architecture: "amd64" }));
    assert.deepEqual(parsePlatform("Linux/X86_64"), p({ os: "linux", architecture: "amd64" }));
    assert.deepEqual(parsePlatform("linux/aarch64"), p({ os: "linux", architecture: "arm64" }));
    assert.deepEqual(parsePlatform("linux/arm64/v8"), p({ os: "linux", architecture: "arm64" }));
    assert.deepEqual(
      parsePlatform("linux/arm"),
      p({ os: "linux", architecture: "arm", variant: "v7" }),
    );
    assert.deepEqual(
      parsePlatform("linux/arm/v6"),
      p({ os: "linux", architecture: "arm", variant: "v6" }),
    );
    assert.deepEqual(
      parsePlatform("linux/arm/7"),
      p({ os: "linux", architecture: "arm", variant: "v7" }),
    );
    assert.deepEqual(parsePlatform("windows/amd64"), p({ os: "windows", architecture: "amd64" }));
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
    assert.ok(
      platformsEqual(
        p({ os: "linux", architecture: "arm64" }),
        p({ os: "linux", architecture: "arm64", variant: "v8" }),
      ),
    );
    assert.ok(
      platformsEqual(
        p({ os: "linux", architecture: "arm" }),
        p({ os: "linux", architecture: "arm", variant: "v7" }),
      ),
    );
    assert.ok(
      !platformsEqual(
        p({ os: "linux", architecture: "arm" }),
        p({ os: "linux", architecture: "arm", variant: "v6" }),
      ),
    );
    assert.ok(
      platformsEqual(
        p({ os: "linux", architecture: "x86_64" }),
        p({ os: "linux", architecture: "amd64" }),
      ),
    );
    assert.deepEqual(
      normalisePlatform({ os: "linux", architecture: "armhf" }),
      p({ os: "linux", architecture: "arm", variant: "v7" }),
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
    assert.equal(
      formatPlatform(p({ os: "linux", architecture: "arm", variant: "v7" })),
      "linux/arm/v7",
    );
  });

  it("chooses the exact platform from an index, then the closest fallback", () => {
    const d = (platform?: Platform) => ({
      platform,
      id: platform ? formatPlatform(platform) : "none",
    });
    const index = [
      d(),
      d(p({ os: "linux", architecture: "amd64" })),
      d(p({ os: "linux", architecture: "arm64", variant: "v8" })),
      d(p({ os: "linux", architecture: "arm", variant: "v6" })),
      d(p({ os: "linux", architecture: "arm", variant: "v7" })),
      d(p({ os: "windows", architecture: "amd64" })),
    ];
    assert.equal(choosePlatformDescriptor(index, DEFAULT_PLATFORM)?.id, "linux/amd64");
    assert.equal(
      choosePlatformDescriptor(index, parsePlatform("linux/arm64"))?.id,
      "linux/arm64/v8",
    );
    assert.equal(
      choosePlatformDescriptor(index, p({ os: "linux", architecture: "arm64", variant: "v8" }))?.id,
      "linux/arm64/v8",
    );
    assert.equal(
      choosePlatformDescriptor(index, p({ os: "linux", architecture: "arm" }))?.id,
      "linux/arm/v7",
    );
    assert.equal(
      choosePlatformDescriptor(index, p({ os: "linux", architecture: "arm", variant: "v6" }))?.id,
      "linux/arm/v6",
    );
    assert.equal(
      choosePlatformDescriptor(index, p({ os: "windows", architecture: "amd64" }))?.id,
      "windows/amd64",
    );
    assert.equal(
      choosePlatformDescriptor(index, p({ os: "linux", architecture: "s390x" })),
      undefined,
    );
    // arm/v7 runs arm/v6 when there is no v7; arm/v6 does not run v7.
    const old = [
      d(p({ os: "linux", architecture: "arm", variant: "v5" })),
      d(p({ os: "linux", architecture: "arm", variant: "v6" })),
    ];
    assert.equal(
      choosePlatformDescriptor(old, p({ os: "linux", architecture: "arm", variant: "v7" }))?.id,
      "linux/arm/v6",
    );
    assert.equal(
      choosePlatformDescriptor(
        [d(p({ os: "linux", architecture: "arm", variant: "v7" }))],
        p({ os: "linux", architecture: "arm", variant: "v6" }),
      ),
      undefined,
    );
    // amd64/v3 runs plain amd64; plain amd64 does not run v3.
    assert.equal(
      choosePlatformDescriptor(
        [d(p({ os: "linux", architecture: "amd64" }))],
        p({ os: "linux", architecture: "amd64", variant: "v3" }),
      )?.id,
      "linux/amd64",
    );
    assert.equal(
      choosePlatformDescriptor(
        [d(p({ os: "linux", architecture: "amd64", variant: "v3" }))],
        p({ os: "linux", architecture: "amd64" }),
      ),
      undefined,
    );
    // arm64 never falls back to 32-bit arm.
    assert.equal(
      choosePlatformDescriptor(
        [d(p({ os: "linux", architecture: "arm", variant: "v7" }))],
        p({ os: "linux", architecture: "arm64" }),
      ),
      undefined,
    );
  });
});
