/**
 * Instrumentation: the client and registry fetch-duration histograms and the HTTP request
 * counter, on the prom-client registry the caller passes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Gauge, Registry as PromRegistry } from "prom-client";
import type { ImageEntry, ImageInfo, RepositoryMetadata } from "../../src/image/info.js";
import { ImageName } from "../../src/image/ref.js";
import type { Client } from "../../src/registry/client.js";
import { ManifestUnknownError } from "../../src/registry/errors.js";
import {
  ClientMetrics,
  HttpMetrics,
  instrumentClient,
  instrumentRegistry,
  LabelRequestKind,
  MetricConflictError,
  RegistryMetrics,
  RequestKindMetadata,
  RequestKindTags,
} from "../../src/registry/instrument.js";
import type { Registry } from "../../src/registry/registry.js";

const name = new ImageName("registry.example.com", "team/app");
const info: ImageInfo = {
  ref: name.withTag("v1"),
  digest: "sha256:x",
  mediaType: "m",
  labels: {},
  platforms: [],
};

const fakeClient: Client = {
  tags: async () => ["a", "b"],
  manifest: async (reference): Promise<ImageEntry> => {
    if (reference === "missing") throw new ManifestUnknownError({ reference });
    return { info };
  },
  head: async () => undefined,
};

async function count(
  register: PromRegistry,
  metric: string,
  labels: Record<string, string>,
): Promise<number> {
  const json = await register.getMetricsAsJSON();
  const m = json.find((x) => x.name === metric);
  assert.ok(m, `${metric} is registered`);
  const sample = m.values.find(
    (v) =>
      (v as { metricName?: string }).metricName === `${metric}_count` &&
      Object.entries(labels).every(([k, val]) => v.labels[k] === val),
  );
  return sample?.value ?? 0;
}

describe("instrumentation", () => {
  it("exports Flux's label constants", () => {
    assert.equal(LabelRequestKind, "kind");
    assert.equal(RequestKindTags, "tags");
    assert.equal(RequestKindMetadata, "metadata");
  });

  it("instrumentClient times tags as kind=tags and manifest/head as kind=metadata, by success", async () => {
    const register = new PromRegistry();
    const client = instrumentClient(fakeClient, register);
    assert.deepEqual(await client.tags(), ["a", "b"]);
    assert.deepEqual(await client.manifest("v1"), { info });
    await assert.rejects(client.manifest("missing"), ManifestUnknownError);
    assert.equal(await client.head("v1"), undefined);
    const metric = "regscan_client_fetch_duration_seconds";
    assert.equal(await count(register, metric, { kind: "tags", success: "true" }), 1);
    assert.equal(await count(register, metric, { kind: "metadata", success: "true" }), 2);
    assert.equal(await count(register, metric, { kind: "metadata", success: "false" }), 1);
    const text = await register.metrics();
    assert.match(text, /# TYPE regscan_client_fetch_duration_seconds histogram/);
  });

  it("instrumentRegistry times both Registry methods by success", async () => {
    const register = new PromRegistry();
    const inner: Registry = {
      getImageRepositoryMetadata: async (): Promise<RepositoryMetadata> => ({
        tags: [],
        images: new Map(),
      }),
      getImage: async () => {
        throw new ManifestUnknownError();
      },
    };
    const registry = instrumentRegistry(inner, new RegistryMetrics(register));
    await registry.getImageRepositoryMetadata(name);
    await assert.rejects(registry.getImage(name.withTag("x")));
    const metric = "regscan_registry_fetch_duration_seconds";
    assert.equal(await count(register, metric, { success: "true" }), 1);
    assert.equal(await count(register, metric, { success: "false" }), 1);
    assert.equal(registry.streamImageRepository, undefined, "none where the inner has none");
  });

  it("instrumentRegistry passes a stream on and times its opening", async () => {
    const register = new PromRegistry();
    const tags = ["a", "b"];
    const inner: Registry = {
      getImageRepositoryMetadata: async () => {
        throw new Error("not asked");
      },
      async streamImageRepository() {
        return {
          tags,
          async *images() {
            yield [];
          },
        };
      },
      getImage: async () => {
        throw new ManifestUnknownError();
      },
    };
    const registry = instrumentRegistry(inner, new RegistryMetrics(register));
    const stream = await registry.streamImageRepository?.(name);
    assert.equal(stream?.tags, tags);
    const metric = "regscan_registry_fetch_duration_seconds";
    assert.equal(await count(register, metric, { success: "true" }), 1);
  });

  it("HttpMetrics counts requests by host, method and status", async () => {
    const register = new PromRegistry();
    const http = new HttpMetrics(register);
    http.observe({ host: "Registry.Example.com", method: "get", status: 200 });
    http.observe({ host: "registry.example.com", method: "GET", status: 200 });
    http.observe({ host: "registry.example.com", method: "HEAD", status: "error" });
    const json = await register.getMetricsAsJSON();
    const m = json.find((x) => x.name === "regscan_http_requests_total");
    assert.ok(m);
    assert.deepEqual(
      m.values.map((v) => [v.labels, v.value]),
      [
        [{ host: "registry.example.com", method: "GET", status: "200" }, 2],
        [{ host: "registry.example.com", method: "HEAD", status: "error" }, 1],
      ],
    );
  });

  it("creating metrics twice on one registry reuses them; a clashing kind is an error", async () => {
    const register = new PromRegistry();
    const a = new ClientMetrics(register);
    const b = new ClientMetrics(register);
    assert.equal(a.fetchDuration, b.fetchDuration);
    assert.equal(new HttpMetrics(register).requests, new HttpMetrics(register).requests);
    await instrumentClient(fakeClient, register).tags();
    await instrumentClient(fakeClient, register).tags();
    assert.equal(
      await count(register, "regscan_client_fetch_duration_seconds", { kind: "tags" }),
      2,
    );
    const other = new PromRegistry();
    new Gauge({ name: "regscan_registry_fetch_duration_seconds", help: "x", registers: [other] });
    assert.throws(() => new RegistryMetrics(other), MetricConflictError);
  });

  it("defaults to a fresh registry of its own", () => {
    const m = new ClientMetrics();
    assert.ok(m.register instanceof PromRegistry);
    assert.notEqual(m.register, new ClientMetrics().register);
  });
});
