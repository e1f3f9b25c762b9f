#!/usr/bin/env node
// Pushes a few small sample images to a local registry for the quickstart, with nothing but
// Node's own fetch: no docker, no internet. Usage: node examples/push-samples.mjs HOST:PORT
//
// It pushes demo/hello (tags 1.0, 1.1, latest), demo/web (an OCI image index for
// linux/amd64 and linux/arm64, tags v1 and v2) and demo/tools (tag 2024.05, with labels).
// With a TAG (node examples/push-samples.mjs HOST:PORT 1.2) it pushes only a new image as
// demo/hello:TAG and moves demo/hello:latest to it: a new tag and a moved tag to watch for.
import { createHash, randomBytes } from "node:crypto";

const host = process.argv[2];
const newTag = process.argv[3];
if (
  !host ||
  !/^[\w.-]+(:\d+)?$/.test(host) ||
  (newTag !== undefined && !/^\w[\w.-]{0,127}$/.test(newTag))
) {
  console.error(
    "usage: node examples/push-samples.mjs HOST:PORT [TAG]   (a registry reachable over plain HTTP)",
  );
  process.exit(2);
}
const base = `http://${host}`;
const TIMEOUT_MS = 15_000;

const digestOf = (bytes) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function call(method, url, init = {}) {
  const res = await fetch(url.startsWith("http") ? url : `${base}${url}`, {
    method,
    redirect: "manual",
    signal: AbortSignal.timeout(TIMEOUT_MS),
    ...init,
  });
  if (res.status >= 400) {
    throw new Error(`${method} ${url}: HTTP ${res.status} ${await res.text()}`);
  }
  return res;
}

async function pushBlob(repo, bytes) {
  const digest = digestOf(bytes);
  const head = await fetch(`${base}/v2/${repo}/blobs/${digest}`, {
    method: "HEAD",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  if (head.status === 200) return { digest, size: bytes.length };
  const start = await call("POST", `/v2/${repo}/blobs/uploads/`);
  await start.arrayBuffer();
  const location = new URL(start.headers.get("location"), base);
  location.searchParams.set("digest", digest);
  const put = await call("PUT", location.toString(), {
    headers: { "content-type": "application/octet-stream" },
    body: bytes,
  });
  await put.arrayBuffer();
  return { digest, size: bytes.length };
}

async function putManifest(repo, ref, manifest, mediaType) {
  const bytes = Buffer.from(JSON.stringify(manifest));
  const res = await call("PUT", `/v2/${repo}/manifests/${ref}`, {
    headers: { "content-type": mediaType },
    body: bytes,
  });
  await res.arrayBuffer();
  return { digest: digestOf(bytes), size: bytes.length, mediaType };
}

async function pushImage(
  repo,
  { created, labels = {}, os = "linux", architecture = "amd64", variant, oci = false },
) {
  const layer = await pushBlob(repo, randomBytes(256));
  const config = Buffer.from(
    JSON.stringify({
      created,
      os,
      architecture,
      ...(variant ? { variant } : {}),
      config: { Labels: { "org.opencontainers.image.created": created, ...labels } },
      rootfs: { type: "layers", diff_ids: [layer.digest] },
      history: [{ created, created_by: "push-samples.mjs" }],
    }),
  );
  const cfg = await pushBlob(repo, config);
  const mediaType = oci
    ? "application/vnd.oci.image.manifest.v1+json"
    : "application/vnd.docker.distribution.manifest.v2+json";
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: oci
        ? "application/vnd.oci.image.config.v1+json"
        : "application/vnd.docker.container.image.v1+json",
      digest: cfg.digest,
      size: cfg.size,
    },
    layers: [
      {
        mediaType: oci
          ? "application/vnd.oci.image.layer.v1.tar+gzip"
          : "application/vnd.docker.image.rootfs.diff.tar.gzip",
        digest: layer.digest,
        size: layer.size,
      },
    ],
  };
  return { manifest, mediaType, platform: { os, architecture, ...(variant ? { variant } : {}) } };
}

async function main() {
  for (let attempt = 0; ; attempt++) {
    try {
      await (await fetch(`${base}/v2/`, { signal: AbortSignal.timeout(2_000) })).arrayBuffer();
      break;
    } catch (err) {
      if (attempt >= 50) throw new Error(`registry at ${base} does not answer: ${err.message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  if (newTag !== undefined) {
    const img = await pushImage("demo/hello", {
      created: new Date().toISOString(),
      labels: { "org.opencontainers.image.version": newTag },
    });
    await putManifest("demo/hello", newTag, img.manifest, img.mediaType);
    await putManifest("demo/hello", "latest", img.manifest, img.mediaType);
    console.log(`pushed demo/hello:${newTag} and moved demo/hello:latest to it on ${host}`);
    return;
  }

  const versions = [
    ["1.0", "2024-01-10T09:00:00Z"],
    ["1.1", "2024-03-02T09:00:00Z"],
  ];
  for (const [tag, created] of versions) {
    const img = await pushImage("demo/hello", {
      created,
      labels: { "org.opencontainers.image.version": tag },
    });
    await putManifest("demo/hello", tag, img.manifest, img.mediaType);
    if (tag === "1.1") await putManifest("demo/hello", "latest", img.manifest, img.mediaType);
  }

  for (const [tag, created] of [
    ["v1", "2024-04-01T12:00:00Z"],
    ["v2", "2024-05-01T12:00:00Z"],
  ]) {
    const children = [];
    for (const [architecture, variant] of [
      ["amd64", undefined],
      ["arm64", "v8"],
    ]) {
      const img = await pushImage("demo/web", { created, architecture, variant, oci: true });
      const pushed = await putManifest(
        "demo/web",
        digestOf(Buffer.from(JSON.stringify(img.manifest))),
        img.manifest,
        img.mediaType,
      );
      children.push({
        mediaType: pushed.mediaType,
        digest: pushed.digest,
        size: pushed.size,
        platform: img.platform,
      });
    }
    await putManifest(
      "demo/web",
      tag,
      {
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: children,
      },
      "application/vnd.oci.image.index.v1+json",
    );
  }

  const tools = await pushImage("demo/tools", {
    created: "2024-05-20T08:30:00Z",
    labels: {
      "org.opencontainers.image.title": "tools",
      "org.opencontainers.image.vendor": "regscan quickstart",
    },
  });
  await putManifest("demo/tools", "2024.05", tools.manifest, tools.mediaType);

  console.log(
    `pushed demo/hello (1.0, 1.1, latest), demo/web (v1, v2: linux/amd64 + linux/arm64), demo/tools (2024.05) to ${host}`,
  );
}

main().catch((err) => {
  console.error(`push-samples: ${err.message}`);
  process.exit(1);
});
