/**
 * The image config decoder: creation time, platform and labels (`config.Labels`, else
 * `container_config.Labels`), and (property) no input throws anything but typed errors.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  InvalidImageConfigError,
  RegistryError,
  TooLargeError,
} from "../../../src/registry/errors.js";
import { decodeImageConfig, MAX_CONFIG_BYTES } from "../../../src/registry/manifest/config.js";
import { config, enc } from "./fixtures.js";

describe("decodeImageConfig", () => {
  it("reads created, platform and config.Labels", () => {
    const c = decodeImageConfig(
      enc(config({ variant: "v8", architecture: "arm64", "os.version": "10.0" })),
    );
    assert.equal(c.createdAt?.toISOString(), "2024-03-04T05:06:07.123Z");
    assert.equal(c.architecture, "arm64");
    assert.equal(c.os, "linux");
    assert.equal(c.variant, "v8");
    assert.equal(c.osVersion, "10.0");
    assert.deepEqual(c.labels, { "org.label-schema.build-date": "2024-03-04", shared: "config" });
  });

  it("falls back to container_config.Labels, else no labels", () => {
    assert.deepEqual(decodeImageConfig(enc(config({ config: { Labels: null } }))).labels, {
      old: "yes",
    });
    assert.deepEqual(decodeImageConfig(enc(config({ config: {} }))).labels, { old: "yes" });
    assert.deepEqual(decodeImageConfig(enc({})).labels, {});
  });

  it("keeps a __proto__ label as a plain label", () => {
    const c = decodeImageConfig(
      new TextEncoder().encode('{"config":{"Labels":{"__proto__":"x","a":"b"}}}'),
    );
    assert.equal(Object.getPrototypeOf(c.labels), Object.prototype);
    assert.deepEqual(Object.keys(c.labels).sort(), ["__proto__", "a"]);
  });

  it("treats Go's zero time and odd date strings as no creation time", () => {
    assert.equal(decodeImageConfig(enc({ created: "0001-01-01T00:00:00Z" })).createdAt, undefined);
    assert.equal(decodeImageConfig(enc({ created: "yesterday" })).createdAt, undefined);
    assert.equal(
      decodeImageConfig(enc({ created: "2020-01-01T01:00:00+01:00" })).createdAt?.toISOString(),
      "2020-01-01T00:00:00.000Z",
    );
  });

  it("refuses configs over 16 MiB with TOO_LARGE", () => {
    assert.throws(
      () => decodeImageConfig(new Uint8Array(MAX_CONFIG_BYTES + 1), { host: "h" }),
      (err: unknown) => err instanceof TooLargeError && err.limit === MAX_CONFIG_BYTES,
    );
  });

  it("refuses malformed configs with INVALID_IMAGE_CONFIG", () => {
    for (const bad of [
      "{",
      "[]",
      "null",
      '{"created":1}',
      '{"os":2}',
      '{"config":{"Labels":[]}}',
      '{"config":{"Labels":{"a":1}}}',
    ]) {
      assert.throws(
        () => decodeImageConfig(new TextEncoder().encode(bad)),
        InvalidImageConfigError,
        bad,
      );
    }
  });

  it("property: any bytes or JSON throw only typed registry errors", () => {
    const json = fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v) ?? "null"));
    const shaped = fc
      .record(
        {
          created: fc.jsonValue(),
          config: fc.jsonValue(),
          container_config: fc.jsonValue(),
          os: fc.jsonValue(),
        },
        { requiredKeys: [] },
      )
      .map((v) => enc(v));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), json, shaped), (bytes) => {
        try {
          const c = decodeImageConfig(bytes);
          for (const v of Object.values(c.labels)) assert.equal(typeof v, "string");
        } catch (err) {
          assert.ok(err instanceof RegistryError, String(err));
        }
      }),
      { numRuns: 1500 },
    );
  });
});
