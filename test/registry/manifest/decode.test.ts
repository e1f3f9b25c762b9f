/**
 * The manifest decoder: media types and the Accept header, every manifest kind decoded
 * from its bytes and Content-Type, and (property) no input throws anything but typed errors.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { computeDigest } from "../../../src/registry/digest.js";
import {
  InvalidManifestError,
  RegistryError,
  TooLargeError,
  UnsupportedMediaTypeError,
} from "../../../src/registry/errors.js";
import { decodeManifest, MAX_MANIFEST_BYTES } from "../../../src/registry/manifest/decode.js";
import {
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA1_SIGNED,
  DOCKER_SCHEMA2,
  MANIFEST_ACCEPT,
  MANIFEST_MEDIA_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../../../src/registry/manifest/media-types.js";
import { manifestDigestBytes } from "../../../src/registry/manifest/schema1-payload.js";
import {
  AMD64_DIGEST,
  CONFIG_DIGEST,
  dockerSchema2,
  enc,
  LAYER_DIGEST,
  ociIndex,
  ociManifest,
  schema1,
  signedSchema1,
} from "./fixtures.js";

const ctx = { host: "registry.example.com", repository: "team/app", reference: "v1" };

describe("media types", () => {
  it("the Accept header lists every manifest type", () => {
    for (const t of [
      OCI_INDEX,
      DOCKER_MANIFEST_LIST,
      OCI_MANIFEST,
      DOCKER_SCHEMA2,
      DOCKER_SCHEMA1,
      DOCKER_SCHEMA1_SIGNED,
    ]) {
      assert.ok(MANIFEST_ACCEPT.includes(t), t);
    }
    assert.equal(MANIFEST_MEDIA_TYPES.length, 6);
  });
});

describe("decodeManifest", () => {
  it("decodes an OCI image index with its platform descriptors", () => {
    const m = decodeManifest(enc(ociIndex()), OCI_INDEX, ctx);
    assert.equal(m.kind, "index");
    if (m.kind !== "index") return;
    assert.equal(m.mediaType, OCI_INDEX);
    assert.equal(m.manifests.length, 4);
    assert.deepEqual(m.manifests[0], {
      mediaType: OCI_MANIFEST,
      digest: AMD64_DIGEST,
      size: 10,
      annotations: {},
      platform: { os: "linux", architecture: "amd64" },
    });
    assert.deepEqual(m.manifests[1]?.platform, {
      os: "linux",
      architecture: "arm64",
      variant: "v8",
    });
    assert.equal(m.annotations.shared, "index");
  });

  it("decodes a Docker manifest list", () => {
    const m = decodeManifest(enc(ociIndex(DOCKER_MANIFEST_LIST)), `${DOCKER_MANIFEST_LIST}`);
    assert.equal(m.kind, "index");
    assert.equal(m.mediaType, DOCKER_MANIFEST_LIST);
  });

  it("decodes an OCI image manifest (config, layers, annotations), Content-Type parameters ignored", () => {
    const m = decodeManifest(enc(ociManifest()), `${OCI_MANIFEST}; charset=utf-8`);
    assert.equal(m.kind, "image");
    if (m.kind !== "image") return;
    assert.equal(m.mediaType, OCI_MANIFEST);
    assert.equal(m.config.digest, CONFIG_DIGEST);
    assert.equal(m.config.size, 123);
    assert.equal(m.layers[0]?.digest, LAYER_DIGEST);
    assert.equal(m.annotations["org.opencontainers.image.source"], "https://example.com/src");
  });

  it("decodes a Docker schema 2 manifest", () => {
    const m = decodeManifest(enc(dockerSchema2()), DOCKER_SCHEMA2);
    assert.equal(m.kind, "image");
    assert.equal(m.mediaType, DOCKER_SCHEMA2);
  });

  it("decodes schema 1: created, os, architecture and config.Labels from history[0]", () => {
    const v1 = {
      created: "2017-01-02T03:04:05.999999999Z",
      os: "linux",
      architecture: "amd64",
      config: { Labels: { a: "1" } },
      container_config: { Labels: { b: "2" } },
    };
    const m = decodeManifest(enc(schema1(v1)), DOCKER_SCHEMA1);
    assert.equal(m.kind, "schema1");
    if (m.kind !== "schema1") return;
    assert.equal(m.signed, false);
    assert.equal(m.createdAt?.toISOString(), "2017-01-02T03:04:05.999Z");
    assert.equal(m.os, "linux");
    assert.equal(m.architecture, "amd64");
    assert.deepEqual(m.labels, { a: "1" });
    assert.equal(m.name, "team/app");
    assert.equal(m.tag, "v1");
  });

  it("schema 1 falls back to container_config.Labels when config has none", () => {
    for (const cfg of [{ Labels: null }, {}, null, { Labels: {} }]) {
      const m = decodeManifest(
        enc(schema1({ config: cfg, container_config: { Labels: { b: "2" } } })),
        DOCKER_SCHEMA1,
      );
      assert.equal(m.kind, "schema1");
      if (m.kind === "schema1") assert.deepEqual(m.labels, { b: "2" }, JSON.stringify(cfg));
    }
  });

  it("decodes a signed schema 1 manifest, and its digest covers the JWS payload", () => {
    const { signed, payload } = signedSchema1({
      created: "2016-01-01T00:00:00Z",
      config: { Labels: { s: "1" } },
    });
    const m = decodeManifest(signed, DOCKER_SCHEMA1_SIGNED);
    assert.equal(m.kind, "schema1");
    if (m.kind !== "schema1") return;
    assert.equal(m.signed, true);
    assert.deepEqual(m.labels, { s: "1" });
    assert.equal(computeDigest(manifestDigestBytes(signed)), computeDigest(payload));
    assert.notEqual(computeDigest(signed), computeDigest(payload));
    // Everything else hashes as it is.
    const plain = enc(ociManifest());
    assert.equal(manifestDigestBytes(plain), plain);
  });

  it("refuses a signed schema 1 manifest with a broken `protected` header", () => {
    const bad = enc({ ...schema1({}), signatures: [{ protected: "!!" }] });
    assert.throws(() => manifestDigestBytes(bad, ctx), InvalidManifestError);
    const noLen = enc({
      ...schema1({}),
      signatures: [
        { protected: Buffer.from(JSON.stringify({ formatTail: "" })).toString("base64url") },
      ],
    });
    assert.throws(() => manifestDigestBytes(noLen), InvalidManifestError);
  });

  it("tells the type from the body when Content-Type is missing or generic", () => {
    const { mediaType: _, ...indexWithout } = ociIndex();
    assert.equal(decodeManifest(enc(indexWithout), "application/json").mediaType, OCI_INDEX);
    const { mediaType: __, ...manifestWithout } = ociManifest();
    assert.equal(decodeManifest(enc(manifestWithout), undefined).mediaType, OCI_MANIFEST);
    assert.equal(decodeManifest(enc(dockerSchema2()), "text/plain").mediaType, DOCKER_SCHEMA2);
    assert.equal(decodeManifest(enc(schema1({})), null).mediaType, DOCKER_SCHEMA1);
    const { signed } = signedSchema1({});
    assert.equal(
      decodeManifest(signed, "application/octet-stream").mediaType,
      DOCKER_SCHEMA1_SIGNED,
    );
    assert.throws(
      () => decodeManifest(enc({ schemaVersion: 2 }), "application/json"),
      InvalidManifestError,
    );
  });

  it("refuses manifests over 4 MiB with TOO_LARGE", () => {
    const big = new Uint8Array(MAX_MANIFEST_BYTES + 1);
    assert.throws(
      () => decodeManifest(big, OCI_MANIFEST, ctx),
      (err: unknown) =>
        err instanceof TooLargeError &&
        err.code === "TOO_LARGE" &&
        err.limit === MAX_MANIFEST_BYTES &&
        err.host === "registry.example.com",
    );
  });

  it("refuses unknown media types with UNSUPPORTED_MEDIA_TYPE", () => {
    assert.throws(
      () => decodeManifest(enc(ociManifest()), "application/vnd.oci.artifact.manifest.v1+json"),
      (err: unknown) =>
        err instanceof UnsupportedMediaTypeError &&
        err.mediaType === "application/vnd.oci.artifact.manifest.v1+json",
    );
    assert.throws(
      () =>
        decodeManifest(
          enc({ schemaVersion: 2, mediaType: "application/x-weird" }),
          "application/json",
        ),
      UnsupportedMediaTypeError,
    );
  });

  it("refuses malformed manifests with INVALID_MANIFEST", () => {
    const cases: [unknown, string][] = [
      ["not json{", OCI_MANIFEST],
      [[1, 2], OCI_MANIFEST],
      [{ ...ociManifest(), config: undefined }, OCI_MANIFEST],
      [{ ...ociManifest(), schemaVersion: 1 }, OCI_MANIFEST],
      [
        { ...ociManifest(), config: { mediaType: "x", digest: "sha256:nope", size: 1 } },
        OCI_MANIFEST,
      ],
      [
        { ...ociManifest(), config: { mediaType: "x", digest: CONFIG_DIGEST, size: -1 } },
        OCI_MANIFEST,
      ],
      [{ ...ociManifest(), annotations: { a: 1 } }, OCI_MANIFEST],
      [{ ...ociIndex(), manifests: {} }, OCI_INDEX],
      [
        {
          ...ociIndex(),
          manifests: [
            { mediaType: OCI_MANIFEST, digest: AMD64_DIGEST, size: 1, platform: { os: "linux" } },
          ],
        },
        OCI_INDEX,
      ],
      [{ ...schema1({}), history: [{ v1Compatibility: "{bad" }] }, DOCKER_SCHEMA1],
      [{ ...schema1({}), history: "x" }, DOCKER_SCHEMA1],
      [schema1({ config: { Labels: { a: 1 } } }), DOCKER_SCHEMA1],
      [schema1({ created: 5 }), DOCKER_SCHEMA1],
      // The body says index, the header says manifest.
      [ociIndex(), OCI_MANIFEST],
    ];
    for (const [body, type] of cases) {
      const bytes = typeof body === "string" ? new TextEncoder().encode(body) : enc(body);
      assert.throws(
        () => decodeManifest(bytes, type, ctx),
        InvalidManifestError,
        JSON.stringify(body).slice(0, 200),
      );
    }
    assert.throws(
      () => decodeManifest(new Uint8Array([0xff, 0xfe, 0x00]), OCI_MANIFEST),
      InvalidManifestError,
    );
  });

  it("deeply nested JSON decodes or fails with a typed error, never a stack overflow", () => {
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    const json = `{"schemaVersion":2,"mediaType":"${OCI_INDEX}","manifests":[],"x":${deep}}`;
    const m = decodeManifest(new TextEncoder().encode(json), OCI_INDEX);
    assert.equal(m.kind, "index");
    const bad = new TextEncoder().encode(`{"schemaVersion":2,"annotations":${deep}}`);
    assert.throws(() => decodeManifest(bad, OCI_MANIFEST), InvalidManifestError);
  });

  it("property: arbitrary bytes and content types throw only typed registry errors", () => {
    const contentType = fc.oneof(
      fc.constantFrom(undefined, null, "", "application/json", ...MANIFEST_MEDIA_TYPES),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), contentType, (bytes, type) => {
        try {
          decodeManifest(bytes, type);
        } catch (err) {
          assert.ok(err instanceof RegistryError, String(err));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("property: arbitrary JSON, and valid manifests with fields replaced by anything, throw only typed errors", () => {
    const type = fc.constantFrom(undefined, "application/json", ...MANIFEST_MEDIA_TYPES);
    const base = fc.constantFrom(
      ociManifest(),
      ociIndex(),
      dockerSchema2(),
      schema1({ config: { Labels: { a: "b" } } }),
    );
    const mutated = fc
      .tuple(
        base,
        fc.constantFrom(
          "mediaType",
          "schemaVersion",
          "config",
          "layers",
          "manifests",
          "annotations",
          "history",
          "signatures",
          "__proto__",
        ),
        fc.jsonValue(),
      )
      .map(([b, key, value]) => {
        const copy: Record<string, unknown> = JSON.parse(JSON.stringify(b));
        Object.defineProperty(copy, key, {
          value,
          enumerable: true,
          configurable: true,
          writable: true,
        });
        return copy;
      });
    const nested = fc.tuple(base, fc.jsonValue()).map(([b, value]) => {
      const copy = JSON.parse(JSON.stringify(b));
      if (Array.isArray(copy.manifests)) copy.manifests[0].platform = value;
      if (copy.config) copy.config.size = value;
      if (Array.isArray(copy.history))
        copy.history[0] = { v1Compatibility: JSON.stringify({ config: value, created: value }) };
      return copy;
    });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), mutated, nested), type, (value, t) => {
        const bytes = new TextEncoder().encode(JSON.stringify(value) ?? "null");
        try {
          const m = decodeManifest(bytes, t);
          assert.ok(["index", "image", "schema1"].includes(m.kind));
          manifestDigestBytes(bytes);
        } catch (err) {
          assert.ok(err instanceof RegistryError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
