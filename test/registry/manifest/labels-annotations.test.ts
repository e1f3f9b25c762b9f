/**
 * Labels and OCI annotations against the real registry: `labels` is exactly what
 * `skopeo inspect` shows as `Labels` (the config's, never an annotation), while the image
 * manifest's annotations and the index's are reported beside them, in the library,
 * `regscan inspect` (JSON and text), the API's image JSON and the cache's records; and the
 * timestamp preference reads annotations after labels.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { encodeTagRecord, TagRecordDecoder } from "../../../src/cache/records.js";
import { imageInfoToJSON } from "../../../src/image/json.js";
import { findLabelTimestamp } from "../../../src/image/label-timestamps.js";
import { parseImageName } from "../../../src/image/ref.js";
import type { Client } from "../../../src/registry/client.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../../src/registry/factory.js";
import { parsePlatform } from "../../../src/registry/manifest/platform.js";
import { imageJson } from "../../../src/server/json-forms.js";
import { runCliInProcess } from "../../support/cli.js";
import { ImageBuilder, type PushedImage, type PushedIndex } from "../../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../../support/registry.js";
import { runSkopeo, skopeoFlags } from "../../support/skopeo.js";

const BASE_NAME = "org.opencontainers.image.base.name";
const CREATED = "org.opencontainers.image.created";

/** What buildah writes into an image manifest; none of it is a label. */
const BUILDAH_ANNOTATIONS = {
  [BASE_NAME]: "docker.io/library/alpine:3.20",
  "org.opencontainers.image.base.digest": `sha256:${"e".repeat(64)}`,
  [CREATED]: "2025-06-01T10:00:00Z",
  // The same key as a label, with another value: neither may hide the other.
  team: "from-annotation",
};

let reg: RegistryHandle;
let factory: RemoteClientFactory;
let client: Client;
let arm64: Client;
let annotated: PushedImage;
let unlabelled: PushedImage;
let schema2: PushedImage;
let index: PushedIndex;

before(async () => {
  reg = await startRegistry({ mode: "anonymous" });
  const b = new ImageBuilder(reg);
  try {
    annotated = await b.pushImage("app", ["annotated"], {
      format: "oci",
      created: "2024-01-01T00:00:00Z",
      labels: {
        team: "blue",
        "org.opencontainers.image.version": "1.0",
        "org.label-schema.build-date": "2023-03-03T03:03:03Z",
      },
      annotations: BUILDAH_ANNOTATIONS,
    });
    unlabelled = await b.pushImage("app", ["unlabelled"], {
      format: "oci",
      created: "1970-01-01T00:00:00Z",
      labels: null,
      annotations: { [CREATED]: "2025-07-07T07:07:07Z" },
    });
    schema2 = await b.pushImage("app", ["schema2"], { labels: { kind: "schema2" } });
    index = await b.pushIndex("app", ["index"], {
      annotations: {
        "org.opencontainers.image.ref.name": "index",
        [CREATED]: "2025-08-08T08:08:08Z",
      },
      platforms: [
        {
          os: "linux",
          architecture: "amd64",
          labels: { arch: "amd64" },
          annotations: { [BASE_NAME]: "alpine:amd64" },
        },
        {
          os: "linux",
          architecture: "arm64",
          variant: "v8",
          labels: { arch: "arm64" },
          annotations: { [BASE_NAME]: "alpine:arm64" },
        },
      ],
    });
  } finally {
    await b.close();
  }
  factory = new RemoteClientFactory({ insecureHosts: [reg.host] });
  const name = parseImageName(`${reg.host}/app`);
  client = factory.clientFor(name, Credentials.none());
  arm64 = factory.clientFor(name, Credentials.none(), { platform: parsePlatform("linux/arm64") });
});

after(async () => {
  await factory?.close();
  await reg?.stop();
});

/** `skopeo inspect`'s `Labels` (null when the config has none) for a tag and platform. */
async function skopeoLabels(
  tag: string,
  platform: { arch?: string | undefined; variant?: string | undefined } = {},
) {
  const { arch, variant } = platform;
  const overrides = [
    ...(arch ? ["--override-os", "linux", "--override-arch", arch] : []),
    ...(variant ? ["--override-variant", variant] : []),
  ];
  const out = await runSkopeo([
    ...overrides,
    "inspect",
    ...skopeoFlags(reg),
    `docker://${reg.host}/app:${tag}`,
  ]);
  const json = JSON.parse(out.toString("utf8")) as { Labels?: Record<string, string> | null };
  return json.Labels ?? {};
}

describe("labels are the config's, exactly as skopeo shows them", () => {
  const cases: { tag: string; platform?: string; arch?: string; variant?: string }[] = [
    { tag: "annotated" },
    { tag: "unlabelled" },
    { tag: "schema2" },
    { tag: "index", platform: "linux/amd64", arch: "amd64" },
    { tag: "index", platform: "linux/arm64/v8", arch: "arm64", variant: "v8" },
  ];
  for (const c of cases) {
    test(`${c.tag}${c.platform ? ` (${c.platform})` : ""}`, async () => {
      const entry = await (c.arch === "arm64" ? arm64 : client).manifest(c.tag);
      assert.ok(entry.info, entry.excludedReason);
      assert.deepEqual(
        entry.info.labels,
        await skopeoLabels(c.tag, { arch: c.arch, variant: c.variant }),
      );
    });
  }
});

describe("annotations beside the labels", () => {
  test("an OCI manifest's annotations, as pushed; a clashing key keeps both values", async () => {
    const entry = await client.manifest("annotated");
    assert.ok(entry.info, entry.excludedReason);
    assert.deepEqual(entry.info.labels, annotated.labels);
    assert.equal(entry.info.labels.team, "blue");
    assert.equal(BASE_NAME in entry.info.labels, false);
    assert.deepEqual(entry.info.annotations, BUILDAH_ANNOTATIONS);
    assert.equal(entry.info.indexAnnotations, undefined);
    assert.deepEqual(imageInfoToJSON(entry.info).annotations, BUILDAH_ANNOTATIONS);
  });

  test("an index: the chosen platform manifest's annotations and the index's own", async () => {
    const entry = await arm64.manifest("index");
    assert.ok(entry.info, entry.excludedReason);
    assert.equal(entry.info.platformDigest, index.image("linux/arm64/v8").digest);
    assert.deepEqual(entry.info.labels, { arch: "arm64" });
    assert.deepEqual(entry.info.annotations, { [BASE_NAME]: "alpine:arm64" });
    assert.deepEqual(entry.info.indexAnnotations, index.manifestJson.annotations);
  });

  test("Docker schema 2 has none", async () => {
    const entry = await client.manifest("schema2");
    assert.ok(entry.info, entry.excludedReason);
    assert.deepEqual(entry.info.labels, schema2.labels);
    assert.deepEqual(entry.info.annotations, {});
    assert.deepEqual(imageInfoToJSON(entry.info).annotations, {});
  });

  test("the API's image JSON and the cache's records carry them", async () => {
    const entry = await client.manifest("index");
    assert.ok(entry.info, entry.excludedReason);
    const api = JSON.parse(JSON.stringify(imageJson(entry.info))) as Record<string, unknown>;
    assert.deepEqual(api.labels, { arch: "amd64" });
    assert.deepEqual(api.annotations, { [BASE_NAME]: "alpine:amd64" });
    assert.deepEqual(api.indexAnnotations, index.manifestJson.annotations);
    const name = parseImageName(`${reg.host}/app`);
    const bytes = encodeTagRecord({ entry, intervalMs: 60_000, checkedAt: new Date() });
    const back = new TagRecordDecoder().decode(bytes, name, "index")?.entry.info;
    assert.ok(back);
    assert.deepEqual(back.labels, entry.info.labels);
    assert.deepEqual(back.annotations, entry.info.annotations);
    assert.deepEqual(back.indexAnnotations, entry.info.indexAnnotations);
  });

  test("timestamps: a label first, else the manifest's annotation, else the index's", async () => {
    const fromLabel = await client.manifest("annotated");
    assert.ok(fromLabel.info);
    // Label Schema's label beats the OCI annotation: any label comes before any annotation.
    const labelled = findLabelTimestamp(fromLabel.info);
    assert.equal(labelled.source, "label");
    assert.equal(labelled.label, "org.label-schema.build-date");
    assert.equal(labelled.time?.toISOString(), "2023-03-03T03:03:03.000Z");
    const unlabelledEntry = await client.manifest("unlabelled");
    assert.ok(unlabelledEntry.info);
    assert.equal(unlabelled.labels[CREATED], undefined);
    assert.equal(
      findLabelTimestamp(unlabelledEntry.info).time?.toISOString(),
      "2025-07-07T07:07:07.000Z",
    );
    const fromIndex = await client.manifest("index");
    assert.ok(fromIndex.info);
    const found = findLabelTimestamp(fromIndex.info);
    assert.equal(found.source, "index annotation");
    assert.equal(found.time?.toISOString(), "2025-08-08T08:08:08.000Z");
  });
});

describe("regscan inspect", () => {
  const args = (tag: string, extra: string[] = []) => [
    "inspect",
    `${reg.host}/app:${tag}`,
    "--insecure-host",
    reg.host,
    ...extra,
  ];

  test("--output json: labels as skopeo's, annotations and index annotations beside", async () => {
    const r = await runCliInProcess(args("index", ["-o", "json", "--platform", "linux/arm64"]));
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(json.labels, await skopeoLabels("index", { arch: "arm64", variant: "v8" }));
    assert.deepEqual(json.annotations, { [BASE_NAME]: "alpine:arm64" });
    assert.deepEqual(json.indexAnnotations, index.manifestJson.annotations);
    const keys = Object.keys(json);
    assert.equal(keys.indexOf("annotations"), keys.indexOf("labels") + 1);
  });

  test("the summary lists annotations apart from labels", async () => {
    const r = await runCliInProcess(args("annotated"));
    assert.equal(r.code, 0, r.stderr);
    const labels = r.stdout.slice(r.stdout.indexOf("Labels:"), r.stdout.indexOf("Annotations:"));
    assert.match(labels, /^ {2}team=blue$/m);
    assert.doesNotMatch(labels, /base\.name/);
    const annotations = r.stdout.slice(r.stdout.indexOf("Annotations:"));
    assert.match(
      annotations,
      /^ {2}org\.opencontainers\.image\.base\.name=docker\.io\/library\/alpine:3\.20$/m,
    );
    assert.match(annotations, /^ {2}team=from-annotation$/m);
    const plain = await runCliInProcess(args("schema2"));
    assert.equal(plain.code, 0, plain.stderr);
    assert.doesNotMatch(plain.stdout, /Annotations:/);
  });
});
