/**
 * Pushes generated images to a test registry over the Distribution API (blob upload, manifest
 * PUT), authenticating as the registry's first user: Docker schema 2 and OCI manifests, OCI
 * indexes and Docker manifest lists, and thousands of tags quickly. Returns what it pushed
 * (digests and bytes) so tests can compare what a client reads back.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Agent, fetch, type RequestInit, type Response } from "undici";
import { withoutUndefined } from "../../src/without-undefined.js";
import { MediaTypes } from "./media-types.js";
import type { RegistryHandle } from "./registry.js";

export { MediaTypes };

/** The `Accept` header that gets every manifest kind back as pushed (no schema 1 conversion). */
export const ACCEPT_ALL_MANIFESTS = [
  MediaTypes.ociIndex,
  MediaTypes.dockerManifestList,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifest,
].join(", ");

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The three platforms of a default index: linux/amd64, linux/arm64/v8, linux/arm/v7. */
export const DEFAULT_PLATFORMS: readonly Platform[] = [
  { os: "linux", architecture: "amd64" },
  { os: "linux", architecture: "arm64", variant: "v8" },
  { os: "linux", architecture: "arm", variant: "v7" },
];

/** What to generate for one image. Every field is optional. */
export interface ImageSpec {
  /** Manifest kind: Docker schema 2 (default) or OCI image manifest. */
  format?: "docker" | "oci";
  /** Config `created` (RFC 3339); default `2024-05-01T12:00:00Z`; null leaves it out. */
  created?: string | null;
  /** Default linux/amd64. */
  os?: string;
  architecture?: string;
  variant?: string;
  /**
   * `config.Labels`. Default: `org.opencontainers.image.created` and
   * `org.label-schema.build-date` both equal to `created`; null leaves `Labels` out.
   */
  labels?: Record<string, string> | null;
  /** `container_config.Labels` (the older place for labels); left out by default. */
  containerConfigLabels?: Record<string, string>;
  /** OCI manifest `annotations` (OCI format only). */
  annotations?: Record<string, string>;
  /** Number of layers (default 1) and bytes per layer (default 128). */
  layers?: number;
  layerSize?: number;
  /** Makes the bytes (and so the digests) deterministic; default random, so every push differs. */
  seed?: string;
}

/** A blob that was pushed. */
export interface PushedBlob {
  digest: string;
  size: number;
  mediaType: string;
  bytes: Buffer;
}

/** A manifest (image or index) that was pushed, as `tag`/`tagMany` take it. */
export interface PushedManifest {
  repo: string;
  digest: string;
  mediaType: string;
  /** The manifest bytes exactly as pushed. */
  manifest: Buffer;
  size: number;
}

/** An image manifest that was pushed, with its config and layers. */
export interface PushedImage extends PushedManifest {
  manifestJson: Record<string, unknown>;
  config: PushedBlob & { json: Record<string, unknown> };
  layers: PushedBlob[];
  platform: Platform;
  created: string | undefined;
  labels: Record<string, string>;
  tags: string[];
}

export interface IndexSpec {
  /** OCI image index (default) or Docker manifest list. Platform images follow the format. */
  format?: "oci" | "docker";
  /** Platform images (default DEFAULT_PLATFORMS), each with its own optional image spec. */
  platforms?: Array<Platform & Omit<ImageSpec, "format" | "os" | "architecture" | "variant">>;
  /** OCI index `annotations`. */
  annotations?: Record<string, string>;
  seed?: string;
}

/** An index or manifest list that was pushed, with its platform images. */
export interface PushedIndex extends PushedManifest {
  manifestJson: Record<string, unknown>;
  /** In the order of the index's `manifests`. */
  images: PushedImage[];
  tags: string[];
  /** The image for `os/arch[/variant]`, e.g. `linux/arm/v7`; throws when absent. */
  image(platform: string): PushedImage;
}

/** A registry that is not a harness handle (e.g. a test's own server). */
export interface BuilderTarget {
  /** `http(s)://host:port`. */
  url: string;
  /** PEM CA for HTTPS. */
  ca?: string;
  username?: string;
  password?: string;
  /** Filesystem storage root, for `tagMany(..., { via: "filesystem" })` and `deleteTag`. */
  storageDir?: string;
}

export interface BuilderOptions {
  /** Push through the recording proxy instead of straight to the registry (default false). */
  viaProxy?: boolean;
  /** Credentials; default the registry's first user. */
  username?: string;
  password?: string;
}

/** What {@link ImageBuilder.tagMany} points at what. */
export interface TagManyOptions {
  tags: readonly string[];
  /** Already pushed to the repository. */
  manifest: PushedManifest;
  /** "filesystem" (default when the storage dir is known: fastest) or "api" (manifest PUTs). */
  via?: "filesystem" | "api";
  /** Manifest PUTs in flight for "api" (default 16). */
  concurrency?: number;
}

/** One request of `ImageBuilder#send`. */
interface RegistryRequest {
  method: string;
  /** A path on the registry, or a whole URL (an upload's Location). */
  url: string;
  headers?: Record<string, string> | undefined;
  body?: Buffer | undefined;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const REQUEST_TIMEOUT_MS = 30_000;

function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function parseChallenge(header: string | null): Challenge | undefined {
  if (header === null) return undefined;
  const m = /^(\w+)\s*(.*)$/s.exec(header.trim());
  if (m === null) return undefined;
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)) params[p[1] ?? ""] = p[2] ?? "";
  return { scheme: (m[1] ?? "").toLowerCase(), params };
}

function deterministicBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash("sha256").update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant !== undefined ? `/${p.variant}` : ""}`;
}

async function runBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/** A pool for one registry, trusting `ca` (PEM) when it is given. */
function agentFor(ca: string | undefined): Agent {
  const options: Agent.Options = { connections: 64 };
  if (ca !== undefined) options.connect = { ca };
  return new Agent(options);
}

/** Pushes generated images to one registry. */
export class ImageBuilder {
  readonly #baseUrl: string;
  readonly #dispatcher: Agent;
  readonly #username: string | undefined;
  readonly #password: string | undefined;
  readonly #storageDir: string | undefined;
  readonly #authByRepo = new Map<string, string>();
  readonly #knownBlobs = new Set<string>();

  constructor(target: RegistryHandle | BuilderTarget, opts: BuilderOptions = {}) {
    if ("directUrl" in target) {
      this.#baseUrl = opts.viaProxy === true ? target.url : target.directUrl;
      const first = Object.entries(target.users)[0];
      this.#username = opts.username ?? first?.[0];
      this.#password = opts.password ?? first?.[1];
      this.#storageDir = target.storageDir;
      const ca = target.caFile;
      this.#dispatcher = agentFor(ca === undefined ? undefined : readFileSync(ca, "utf8"));
    } else {
      this.#baseUrl = target.url.replace(/\/+$/, "");
      this.#username = opts.username ?? target.username;
      this.#password = opts.password ?? target.password;
      this.#storageDir = target.storageDir;
      this.#dispatcher = agentFor(target.ca);
    }
  }

  /** Closes the builder's connections. */
  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async #authorize(repo: string, challenge: Challenge | undefined): Promise<void> {
    if (challenge === undefined) throw new Error(`registry asked for auth without a challenge`);
    if (challenge.scheme === "basic") {
      if (this.#username === undefined) throw new Error("registry wants Basic auth; no user");
      const basic = Buffer.from(`${this.#username}:${this.#password ?? ""}`).toString("base64");
      this.#authByRepo.set(repo, `Basic ${basic}`);
      return;
    }
    if (challenge.scheme !== "bearer" || challenge.params.realm === undefined) {
      throw new Error(`unsupported challenge ${challenge.scheme}`);
    }
    const url = new URL(challenge.params.realm);
    if (challenge.params.service !== undefined) {
      url.searchParams.set("service", challenge.params.service);
    }
    url.searchParams.set("scope", `repository:${repo}:pull,push,delete`);
    const headers: Record<string, string> = {};
    if (this.#username !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${this.#username}:${this.#password ?? ""}`).toString("base64")}`;
    }
    const res = await fetch(url, {
      headers,
      dispatcher: this.#dispatcher,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!res.ok || token === undefined) {
      throw new Error(`token server answered ${res.status} for ${repo}`);
    }
    this.#authByRepo.set(repo, `Bearer ${token}`);
  }

  /** One request to the registry for `repo`, authenticating once on 401. */
  async #send(repo: string, { method, url: pathOrUrl, headers: extra, body }: RegistryRequest) {
    const url = new URL(pathOrUrl, this.#baseUrl);
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers: Record<string, string> = { ...extra };
      const auth = this.#authByRepo.get(repo);
      if (auth !== undefined) headers.authorization = auth;
      const requestInit: RequestInit = {
        method,
        headers,
        dispatcher: this.#dispatcher,
        redirect: "manual",
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      };
      if (body !== undefined) requestInit.body = body;
      const res = await fetch(url, requestInit);
      if (res.status === 401 && attempt === 0) {
        await res.arrayBuffer();
        await this.#authorize(repo, parseChallenge(res.headers.get("www-authenticate")));
        continue;
      }
      return res;
    }
    throw new Error("unreachable");
  }

  async #expect(res: Response, statuses: number[], what: string): Promise<void> {
    if (statuses.includes(res.status)) {
      await res.arrayBuffer();
      return;
    }
    const text = await res.text();
    throw new Error(`${what}: registry answered ${res.status}: ${text.slice(0, 500)}`);
  }

  /**
   * Uploads a blob (skipped when this builder pushed it to `repo` already) and returns its
   * descriptor. No HEAD first: nearly every blob a test pushes is new, and uploading one the
   * registry has already is harmless and costs one request more than the HEAD would have.
   */
  async pushBlob(repo: string, bytes: Buffer, mediaType: string): Promise<PushedBlob> {
    const digest = sha256(bytes);
    const blob = { digest, size: bytes.length, mediaType, bytes };
    const key = `${repo}@${digest}`;
    if (this.#knownBlobs.has(key)) return blob;
    const start = await this.#send(repo, { method: "POST", url: `/v2/${repo}/blobs/uploads/` });
    const location = start.headers.get("location");
    await this.#expect(start, [202], `starting upload of ${digest} to ${repo}`);
    if (location === null) throw new Error("blob upload answered without Location");
    const putUrl = new URL(location, this.#baseUrl);
    putUrl.searchParams.set("digest", digest);
    const put = await this.#send(repo, {
      method: "PUT",
      url: putUrl.toString(),
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    });
    await this.#expect(put, [201], `uploading ${digest} to ${repo}`);
    this.#knownBlobs.add(key);
    return blob;
  }

  /** PUTs manifest bytes under `ref` (a tag or a digest) and returns the manifest's digest. */
  async putManifest(
    repo: string,
    { ref, bytes, mediaType }: { ref: string; bytes: Buffer; mediaType: string },
  ): Promise<string> {
    const res = await this.#send(repo, {
      method: "PUT",
      url: `/v2/${repo}/manifests/${ref}`,
      headers: { "content-type": mediaType },
      body: bytes,
    });
    const digest = res.headers.get("docker-content-digest");
    await this.#expect(res, [201], `putting manifest ${repo}:${ref}`);
    const expected = sha256(bytes);
    if (digest !== null && digest !== expected) {
      throw new Error(`registry stored ${repo}:${ref} as ${digest}, expected ${expected}`);
    }
    return expected;
  }

  /**
   * PUTs a manifest under each of `tags`, or by its digest when there are none (a PUT by tag
   * stores the manifest as one by digest does, so that would be a request for nothing).
   */
  async #putTagged(
    repo: string,
    { tags, bytes, mediaType }: { tags: readonly string[]; bytes: Buffer; mediaType: string },
  ): Promise<string> {
    const digest = sha256(bytes);
    for (const ref of tags.length > 0 ? tags : [digest]) {
      await this.putManifest(repo, { ref, bytes, mediaType });
    }
    return digest;
  }

  /** Generates and pushes one image, tagged with `tags` (a tag, several, or none). */
  async pushImage(repo: string, tags: string | string[] | undefined, spec: ImageSpec = {}) {
    const tagList = tags === undefined ? [] : typeof tags === "string" ? [tags] : tags;
    const oci = spec.format === "oci";
    const seed = spec.seed ?? randomBytes(8).toString("hex");
    const created = spec.created === null ? undefined : (spec.created ?? "2024-05-01T12:00:00Z");
    const platform = withoutUndefined<Platform>({
      os: spec.os ?? "linux",
      architecture: spec.architecture ?? "amd64",
      variant: spec.variant,
    });
    const labels =
      spec.labels === null
        ? {}
        : (spec.labels ??
          (created !== undefined
            ? {
                "org.opencontainers.image.created": created,
                "org.label-schema.build-date": created,
              }
            : {}));

    const layers: PushedBlob[] = [];
    for (let i = 0; i < (spec.layers ?? 1); i++) {
      const bytes = deterministicBytes(
        `${seed}/${platformString(platform)}/layer${i}`,
        spec.layerSize ?? 128,
      );
      layers.push(
        await this.pushBlob(repo, bytes, oci ? MediaTypes.ociLayer : MediaTypes.dockerLayer),
      );
    }
    // Absent fields are no keys at all, as in an image a build tool writes.
    const configJson = withoutUndefined<Record<string, unknown>>({
      created,
      architecture: platform.architecture,
      os: platform.os,
      variant: platform.variant,
      config: withoutUndefined<Record<string, unknown>>({
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Cmd: ["/bin/sh"],
        Labels: spec.labels === null ? undefined : labels,
      }),
      container_config:
        spec.containerConfigLabels === undefined
          ? undefined
          : { Labels: spec.containerConfigLabels },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      history: [
        withoutUndefined<Record<string, unknown>>({
          created,
          created_by: `regscan test ${seed}`,
        }),
      ],
    });
    const configBytes = Buffer.from(JSON.stringify(configJson));
    const config = await this.pushBlob(
      repo,
      configBytes,
      oci ? MediaTypes.ociConfig : MediaTypes.dockerConfig,
    );
    const mediaType = oci ? MediaTypes.ociManifest : MediaTypes.dockerManifest;
    const manifestJson = withoutUndefined<Record<string, unknown>>({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: config.mediaType, size: config.size, digest: config.digest },
      layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
      annotations: oci ? spec.annotations : undefined,
    });
    const manifest = Buffer.from(JSON.stringify(manifestJson, null, 3));
    const digest = await this.#putTagged(repo, { tags: tagList, bytes: manifest, mediaType });
    const image: PushedImage = {
      repo,
      digest,
      mediaType,
      manifest,
      size: manifest.length,
      manifestJson,
      config: { ...config, json: configJson },
      layers,
      platform,
      created,
      labels,
      tags: tagList,
    };
    return image;
  }

  /** Generates and pushes an OCI index or Docker manifest list with its platform images. */
  async pushIndex(
    repo: string,
    tags: string | string[] | undefined,
    spec: IndexSpec = {},
  ): Promise<PushedIndex> {
    const tagList = tags === undefined ? [] : typeof tags === "string" ? [tags] : tags;
    const docker = spec.format === "docker";
    const seed = spec.seed ?? randomBytes(8).toString("hex");
    const images: PushedImage[] = [];
    for (const p of spec.platforms ?? DEFAULT_PLATFORMS) {
      images.push(
        await this.pushImage(repo, undefined, {
          seed,
          ...p,
          format: docker ? "docker" : "oci",
        }),
      );
    }
    const mediaType = docker ? MediaTypes.dockerManifestList : MediaTypes.ociIndex;
    const manifestJson = withoutUndefined<Record<string, unknown>>({
      schemaVersion: 2,
      mediaType,
      manifests: images.map((img) => ({
        mediaType: img.mediaType,
        size: img.size,
        digest: img.digest,
        platform: img.platform,
      })),
      annotations: docker ? undefined : spec.annotations,
    });
    const manifest = Buffer.from(JSON.stringify(manifestJson, null, 3));
    const digest = await this.#putTagged(repo, { tags: tagList, bytes: manifest, mediaType });
    return {
      repo,
      digest,
      mediaType,
      manifest,
      size: manifest.length,
      manifestJson,
      images,
      tags: tagList,
      image: (wanted: string) => {
        const found = images.find((i) => platformString(i.platform) === wanted);
        if (found === undefined) throw new Error(`index ${digest} has no platform ${wanted}`);
        return found;
      },
    };
  }

  /** Points `tag` at an already pushed manifest (moving it if it pointed elsewhere). */
  async tag(repo: string, tag: string, manifest: PushedManifest): Promise<void> {
    await this.putManifest(repo, {
      ref: tag,
      bytes: manifest.manifest,
      mediaType: manifest.mediaType,
    });
  }

  /** Same as `tag`: the registry moves a tag by a manifest PUT. */
  moveTag(repo: string, tag: string, manifest: PushedManifest): Promise<void> {
    return this.tag(repo, tag, manifest);
  }

  /**
   * Points every tag in `tags` at `manifest` (already pushed to `repo`). The filesystem way
   * writes distribution's tag link files directly and is many times faster than manifest PUTs.
   */
  async tagMany(
    repo: string,
    { tags, manifest, via: how, concurrency }: TagManyOptions,
  ): Promise<void> {
    const via = how ?? (this.#storageDir !== undefined ? "filesystem" : "api");
    if (via === "api") {
      await runBounded(tags, concurrency ?? 16, (t) => this.tag(repo, t, manifest));
      return;
    }
    const tagsDir = this.#tagsDir(repo);
    const link = manifest.digest;
    const hex = link.slice("sha256:".length);
    // Synchronous: these are small local files (on a tmpfs, see tempBase) that nothing reads
    // meanwhile, and each asynchronous call's round trip through the thread pool cost three
    // times the work itself (0.8 s of CPU for 5,000 tags instead of 0.25).
    for (const t of tags) {
      const current = join(tagsDir, t, "current");
      const index = join(tagsDir, t, "index", "sha256", hex);
      mkdirSync(current, { recursive: true });
      mkdirSync(index, { recursive: true });
      writeFileSync(join(current, "link"), link);
      writeFileSync(join(index, "link"), link);
    }
  }

  /** Removes a tag (distribution 2.8 cannot delete by tag over the API; this edits storage). */
  async deleteTag(repo: string, tag: string): Promise<void> {
    await rm(join(this.#tagsDir(repo), tag), { recursive: true, force: true });
  }

  /** Deletes a manifest by digest over the API (its tags go with it). */
  async deleteManifest(repo: string, digest: string): Promise<void> {
    const res = await this.#send(repo, {
      method: "DELETE",
      url: `/v2/${repo}/manifests/${digest}`,
    });
    await this.#expect(res, [202], `deleting ${repo}@${digest}`);
  }

  #tagsDir(repo: string): string {
    if (this.#storageDir === undefined) {
      throw new Error("this needs the registry's storage directory (a harness registry)");
    }
    return join(this.#storageDir, "docker/registry/v2/repositories", repo, "_manifests/tags");
  }
}
