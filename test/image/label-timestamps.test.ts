/**
 * Timestamp labels and RFC 3339: well-formed labels are read, malformed ones reported by
 * name, value and source while the rest is kept, and the best creation time follows Flux
 * v1's preference (OCI created, then Label Schema build-date, then the config's time),
 * the config's labels before the manifest's annotations before the index's.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { ImageInfo } from "../../src/image/info.js";
import {
  bestCreationTime,
  findLabelTimestamp,
  LABEL_SCHEMA_BUILD_DATE_LABEL,
  LABEL_TIMESTAMP_PRIORITY,
  LabelTimestampFormatError,
  OCI_CREATED_LABEL,
  preferLabelTimestamps,
  readLabelTimestamps,
} from "../../src/image/label-timestamps.js";
import { parseImageRef } from "../../src/image/ref.js";
import { formatRfc3339, parseRfc3339 } from "../../src/image/rfc3339.js";

function info(labels: Record<string, string>, createdAt?: Date): ImageInfo {
  const out: ImageInfo = {
    ref: parseImageRef("alpine:3"),
    digest: `sha256:${"a".repeat(64)}`,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    labels,
    platforms: [],
  };
  if (createdAt) out.createdAt = createdAt;
  return out;
}

describe("parseRfc3339", () => {
  const cases: [string, string | undefined][] = [
    ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000Z"],
    ["2024-01-02t03:04:05z", "2024-01-02T03:04:05.000Z"],
    ["2024-01-02T03:04:05.5Z", "2024-01-02T03:04:05.500Z"],
    ["2024-01-02T03:04:05.123456789-01:30", "2024-01-02T04:34:05.123Z"],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"],
    ["0050-06-01T00:00:00Z", "0050-06-01T00:00:00.000Z"],
    ["2023-02-29T00:00:00Z", undefined],
    ["2024-04-31T00:00:00Z", undefined],
    ["2024-13-01T00:00:00Z", undefined],
    ["2024-01-02T24:00:00Z", undefined],
    ["2024-01-02T03:04:60Z", undefined],
    ["2024-01-02T03:04:05", undefined],
    ["2024-01-02 03:04:05Z", undefined],
    ["2024-01-02", undefined],
    ["2024-01-02T03:04:05+0100", undefined],
    ["Tue, 02 Jan 2024 03:04:05 GMT", undefined],
    ["", undefined],
  ];
  for (const [text, iso] of cases) {
    it(`${JSON.stringify(text)} -> ${iso ?? "refused"}`, () => {
      assert.equal(parseRfc3339(text)?.toISOString(), iso);
    });
  }

  it("round-trips any date in years 1..9999 through formatRfc3339", () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date("0001-01-01T00:00:00Z"),
          max: new Date("9999-12-31T23:59:59.999Z"),
          noInvalidDate: true,
        }),
        (d) => {
          const text = formatRfc3339(d);
          assert.ok(text !== undefined);
          assert.equal(parseRfc3339(text)?.getTime(), d.getTime());
        },
      ),
    );
  });

  it("formats nothing for dates RFC 3339 cannot write", () => {
    assert.equal(formatRfc3339(new Date(Number.NaN)), undefined);
    assert.equal(formatRfc3339(new Date("+010000-01-01T00:00:00Z")), undefined);
  });
});

describe("readLabelTimestamps", () => {
  it("reads both labels", () => {
    const found = readLabelTimestamps({
      [OCI_CREATED_LABEL]: "2024-01-01T00:00:00Z",
      [LABEL_SCHEMA_BUILD_DATE_LABEL]: "2023-01-01T00:00:00+00:00",
    });
    assert.equal(found.created?.toISOString(), "2024-01-01T00:00:00.000Z");
    assert.equal(found.buildDate?.toISOString(), "2023-01-01T00:00:00.000Z");
    assert.deepEqual(found.errors, []);
  });

  it("reports a malformed label by name and value and keeps the other", () => {
    const found = readLabelTimestamps({
      [OCI_CREATED_LABEL]: "last tuesday",
      [LABEL_SCHEMA_BUILD_DATE_LABEL]: "2023-01-01T00:00:00Z",
      other: "x",
    });
    assert.equal(found.created, undefined);
    assert.equal(found.buildDate?.toISOString(), "2023-01-01T00:00:00.000Z");
    assert.equal(found.errors.length, 1);
    const [err] = found.errors;
    assert.ok(err instanceof LabelTimestampFormatError);
    assert.equal(err.code, "LABEL_TIMESTAMP_FORMAT");
    assert.equal(err.label, OCI_CREATED_LABEL);
    assert.equal(err.value, "last tuesday");
    assert.match(err.message, /org\.opencontainers\.image\.created/);
    assert.match(err.message, /"last tuesday"/);
  });

  it("reports both when both are malformed, and shortens a huge value in the message", () => {
    const found = readLabelTimestamps({
      [OCI_CREATED_LABEL]: "x".repeat(10_000),
      [LABEL_SCHEMA_BUILD_DATE_LABEL]: "2023-01-01",
    });
    assert.deepEqual(
      found.errors.map((e) => e.label),
      [OCI_CREATED_LABEL, LABEL_SCHEMA_BUILD_DATE_LABEL],
    );
    assert.ok((found.errors[0]?.message.length ?? 0) < 300);
    assert.equal(found.errors[0]?.value.length, 10_000);
  });

  it("ignores absent labels and inherited properties", () => {
    assert.deepEqual(readLabelTimestamps({}), { errors: [] });
    assert.deepEqual(readLabelTimestamps(Object.create({ [OCI_CREATED_LABEL]: "junk" })), {
      errors: [],
    });
  });
});

describe("bestCreationTime and preferLabelTimestamps", () => {
  const config = new Date("1970-01-01T00:00:00Z");
  const oci = "2024-05-05T05:05:05Z";
  const schema = "2023-03-03T03:03:03Z";

  it("prefers the OCI label, then Label Schema's, then the config time", () => {
    assert.deepEqual(LABEL_TIMESTAMP_PRIORITY, [OCI_CREATED_LABEL, LABEL_SCHEMA_BUILD_DATE_LABEL]);
    const both = info(
      { [OCI_CREATED_LABEL]: oci, [LABEL_SCHEMA_BUILD_DATE_LABEL]: schema },
      config,
    );
    assert.equal(
      bestCreationTime(both, { preferLabels: true })?.toISOString(),
      new Date(oci).toISOString(),
    );
    const schemaOnly = info({ [LABEL_SCHEMA_BUILD_DATE_LABEL]: schema }, config);
    assert.equal(
      bestCreationTime(schemaOnly, { preferLabels: true })?.toISOString(),
      new Date(schema).toISOString(),
    );
    const badOci = info(
      { [OCI_CREATED_LABEL]: "bad", [LABEL_SCHEMA_BUILD_DATE_LABEL]: schema },
      config,
    );
    assert.equal(
      bestCreationTime(badOci, { preferLabels: true })?.toISOString(),
      new Date(schema).toISOString(),
    );
    assert.equal(bestCreationTime(info({}, config), { preferLabels: true }), config);
    assert.equal(bestCreationTime(info({}), { preferLabels: true }), undefined);
  });

  it("uses the config time alone without preferLabels", () => {
    const both = info({ [OCI_CREATED_LABEL]: oci }, config);
    assert.equal(bestCreationTime(both, { preferLabels: false }), config);
  });

  it("reads the manifest's annotations when no label gives a time, then the index's", () => {
    const fromManifest = {
      ...info({ other: "x" }, config),
      annotations: { [OCI_CREATED_LABEL]: oci },
      indexAnnotations: { [OCI_CREATED_LABEL]: schema },
    };
    assert.equal(
      bestCreationTime(fromManifest, { preferLabels: true })?.toISOString(),
      new Date(oci).toISOString(),
    );
    assert.deepEqual(findLabelTimestamp(fromManifest), {
      time: new Date(oci),
      source: "annotation",
      label: OCI_CREATED_LABEL,
      errors: [],
    });
    const fromIndex = {
      ...info({}, config),
      annotations: {},
      indexAnnotations: { [OCI_CREATED_LABEL]: schema },
    };
    assert.equal(
      bestCreationTime(fromIndex, { preferLabels: true })?.toISOString(),
      new Date(schema).toISOString(),
    );
    assert.equal(findLabelTimestamp(fromIndex).source, "index annotation");
    // Without preferLabels, annotations are not read either.
    assert.equal(bestCreationTime(fromManifest, { preferLabels: false }), config);
  });

  it("prefers any label to any annotation (labels first, as Flux v1 read them)", () => {
    const labelled = {
      ...info({ [LABEL_SCHEMA_BUILD_DATE_LABEL]: schema }, config),
      annotations: { [OCI_CREATED_LABEL]: oci },
    };
    const found = findLabelTimestamp(labelled);
    assert.equal(found.time?.toISOString(), new Date(schema).toISOString());
    assert.equal(found.source, "label");
    assert.equal(found.label, LABEL_SCHEMA_BUILD_DATE_LABEL);
    assert.equal(
      preferLabelTimestamps(labelled).info.createdAt?.toISOString(),
      new Date(schema).toISOString(),
    );
  });

  it("reports a malformed annotation with its source, and still uses the next source", () => {
    const bad = {
      ...info({ [OCI_CREATED_LABEL]: "bad label" }, config),
      annotations: { [OCI_CREATED_LABEL]: "bad annotation" },
      indexAnnotations: { [OCI_CREATED_LABEL]: oci },
    };
    const { info: rewritten, errors } = preferLabelTimestamps(bad);
    assert.equal(rewritten.createdAt?.toISOString(), new Date(oci).toISOString());
    assert.deepEqual(
      errors.map((e) => [e.source, e.label, e.value]),
      [
        ["label", OCI_CREATED_LABEL, "bad label"],
        ["annotation", OCI_CREATED_LABEL, "bad annotation"],
      ],
    );
    assert.equal(
      errors[1]?.message,
      `annotation ${OCI_CREATED_LABEL} is not an RFC 3339 timestamp: "bad annotation"`,
    );
    assert.equal(
      errors[0]?.message,
      `label ${OCI_CREATED_LABEL} is not an RFC 3339 timestamp: "bad label"`,
    );
    // A malformed value after the one used is still reported.
    const late = {
      ...info({ [OCI_CREATED_LABEL]: oci }, config),
      indexAnnotations: { [LABEL_SCHEMA_BUILD_DATE_LABEL]: "soon" },
    };
    assert.deepEqual(
      preferLabelTimestamps(late).errors.map((e) => e.source),
      ["index annotation"],
    );
  });

  it("rewrites createdAt in a copy and reports malformed labels", () => {
    const original = info({ [OCI_CREATED_LABEL]: oci }, config);
    const { info: rewritten, errors } = preferLabelTimestamps(original);
    assert.equal(rewritten.createdAt?.toISOString(), new Date(oci).toISOString());
    assert.equal(original.createdAt, config, "the original is not changed");
    assert.deepEqual(errors, []);

    const bad = info({ [OCI_CREATED_LABEL]: "bad" }, config);
    const result = preferLabelTimestamps(bad);
    assert.equal(result.info, bad, "nothing to rewrite: the same info");
    assert.equal(result.errors.length, 1);
  });
});
