/**
 * An in-process ClientFactory over a scripted set of repositories, counting every call, for
 * the warmer's unit tests (the real-registry tests use the harness and RemoteClientFactory).
 */

import type { OperationOptions } from "../../../src/abort.js";
import type { ImageEntry } from "../../../src/image/info.js";
import type { ImageName } from "../../../src/image/ref.js";
import type {
  Client,
  ClientFactory,
  HostConditions,
  ManifestHead,
} from "../../../src/registry/client.js";

/** An error with a code, as the registry client's errors have. */
export class CodedError extends Error {
  constructor(
    readonly code: string,
    message = code,
  ) {
    super(message);
  }
}

/** One scripted repository: tags to digests, digests to what `manifest()` returns. */
export interface FakeRepository {
  tags: Map<string, string>;
  images: Map<string, ImageEntry | "excluded">;
  /** Errors to throw, by operation and reference (`tags` for the listing). */
  failures?: Map<string, CodedError>;
  /** Milliseconds each call waits (to test stops and concurrency). */
  delayMs?: number;
  /** While set, each call waits for it first (to hold a scan until a test has done something). */
  gate?: Promise<unknown> | undefined;
}

export interface CallCounts {
  tags: number;
  head: number;
  manifest: number;
  manifestByTag: number;
  inFlight: number;
  maxInFlight: number;
  succeeded: number;
}

/** Makes the digest of a fake image number `i`. */
export function fakeDigest(i: number): string {
  return `sha256:${i.toString(16).padStart(64, "0")}`;
}

/** Builds a repository with `tags` tags spread over `images` images. */
export function fakeRepository(name: ImageName, tags: number, images: number): FakeRepository {
  const repo: FakeRepository = { tags: new Map(), images: new Map() };
  for (let i = 0; i < images; i++) {
    const digest = fakeDigest(i + 1);
    repo.images.set(digest, {
      info: {
        ref: name.withDigest(digest),
        digest,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        imageID: fakeDigest(1000 + i),
        createdAt: new Date(Date.UTC(2024, 0, 1 + i)),
        labels: {
          "org.opencontainers.image.created": `2023-06-${String(1 + (i % 28)).padStart(2, "0")}T00:00:00Z`,
        },
        platform: { os: "linux", architecture: "amd64" },
        platforms: [{ os: "linux", architecture: "amd64" }],
      },
    });
  }
  for (let t = 0; t < tags; t++) repo.tags.set(`v${t}`, fakeDigest((t % images) + 1));
  return repo;
}

/** A ClientFactory serving `repositories` (by canonical name). */
export class FakeFactory implements ClientFactory {
  readonly calls = new Map<string, CallCounts>();
  readonly platforms: unknown[] = [];
  /** Each client's `priority` option, in the order the clients were made. */
  readonly priorities: (boolean | AbortSignal | undefined)[] = [];

  /** What the factory says of a host's budget (none by default: a factory that cannot say). */
  hostConditions?: (name: ImageName) => HostConditions | undefined;

  constructor(readonly repositories: Map<string, FakeRepository>) {}

  counts(name: string): CallCounts {
    let c = this.calls.get(name);
    if (!c) {
      c = {
        tags: 0,
        head: 0,
        manifest: 0,
        manifestByTag: 0,
        inFlight: 0,
        maxInFlight: 0,
        succeeded: 0,
      };
      this.calls.set(name, c);
    }
    return c;
  }

  reset(): void {
    this.calls.clear();
  }

  succeed(name: ImageName): void {
    this.counts(name.toString()).succeeded++;
  }

  clientFor(
    name: ImageName,
    _creds: unknown,
    opts?: { platform?: unknown; priority?: boolean | AbortSignal | undefined },
  ): Client {
    this.platforms.push(opts?.platform);
    this.priorities.push(opts?.priority);
    const key = name.toString();
    const counts = this.counts(key);
    const repo = () => {
      const r = this.repositories.get(key);
      if (!r) throw new CodedError("NAME_UNKNOWN", `repository ${key} not known`);
      return r;
    };
    const call = async <T>(
      op: string,
      ref: string,
      opts: OperationOptions | undefined,
      fn: () => T,
    ) => {
      counts.inFlight++;
      counts.maxInFlight = Math.max(counts.maxInFlight, counts.inFlight);
      try {
        const r = repo();
        if (r.gate) await r.gate;
        if (r.delayMs) await delay(r.delayMs, opts?.signal);
        opts?.signal?.throwIfAborted();
        const failure = r.failures?.get(`${op}:${ref}`) ?? r.failures?.get(`${op}:*`);
        if (failure) throw failure;
        return fn();
      } finally {
        counts.inFlight--;
      }
    };
    return {
      tags: (opts) => {
        counts.tags++;
        return call("tags", "", opts, () => [...repo().tags.keys()]);
      },
      head: (reference, opts) => {
        counts.head++;
        return call("head", reference, opts, (): ManifestHead | undefined => {
          const digest = reference.startsWith("sha256:") ? reference : repo().tags.get(reference);
          return digest
            ? { digest, mediaType: "application/vnd.oci.image.manifest.v1+json" }
            : undefined;
        });
      },
      manifest: (reference, opts) => {
        counts.manifest++;
        if (!reference.startsWith("sha256:")) counts.manifestByTag++;
        return call("manifest", reference, opts, (): ImageEntry => {
          const digest = reference.startsWith("sha256:") ? reference : repo().tags.get(reference);
          const image = digest && repo().images.get(digest);
          if (!image) throw new CodedError("MANIFEST_UNKNOWN", `manifest ${reference} unknown`);
          if (image === "excluded") return { excludedReason: "no linux/amd64 manifest" };
          if (!image.info) return image;
          return { info: { ...image.info, ref: name.withDigest(digest) } };
        });
      },
    };
  }
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error("aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A settable clock for deadlines. */
export class FakeClock {
  constructor(public ms = Date.UTC(2026, 0, 1)) {}
  now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}
