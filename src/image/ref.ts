/**
 * Image references as `docker pull` understands them (the distribution reference grammar),
 * with Docker Hub normalisation. SKELETON: the parser is implemented by the image-refs work.
 */
import { RegscanError } from "../errors.js";

/** Thrown for any input that is not a valid image reference; the message quotes the input. */
export class InvalidImageRefError extends RegscanError {
  readonly code = "INVALID_IMAGE_REF";
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid image reference ${JSON.stringify(input)}: ${reason}`);
  }
}

/** A repository: registry domain plus path, e.g. `docker.io/library/alpine`. */
export class ImageName {
  constructor(
    /** Canonical domain, e.g. `docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000`. */
    readonly domain: string,
    /** Repository path, e.g. `library/alpine`. */
    readonly path: string,
  ) {}

  /** The host to send API requests to: `registry-1.docker.io` for Docker Hub, else `domain`. */
  get apiHost(): string {
    return this.domain === "docker.io" ? "registry-1.docker.io" : this.domain;
  }

  /** Canonical repository name, e.g. `docker.io/library/alpine`. */
  toString(): string {
    return `${this.domain}/${this.path}`;
  }

  /** The short form people type, e.g. `alpine`, `user/app`, `ghcr.io/a/b`. */
  familiar(): string {
    throw new Error("not implemented");
  }

  /** A reference to a tag of this repository. */
  withTag(tag: string): ImageRef {
    return new ImageRef(this, tag, undefined);
  }

  /** A reference to a digest of this repository. */
  withDigest(digest: string): ImageRef {
    return new ImageRef(this, undefined, digest);
  }

  equals(other: ImageName): boolean {
    return this.domain === other.domain && this.path === other.path;
  }
}

/** A parsed image reference: a repository with an optional tag and an optional digest. */
export class ImageRef {
  constructor(
    readonly name: ImageName,
    readonly tag: string | undefined,
    readonly digest: string | undefined,
  ) {}

  get domain(): string {
    return this.name.domain;
  }
  get path(): string {
    return this.name.path;
  }
  get apiHost(): string {
    return this.name.apiHost;
  }
  /** What to ask the registry for: the digest when there is one, else the tag. */
  get reference(): string | undefined {
    return this.digest ?? this.tag;
  }
  /** Canonical full reference, e.g. `docker.io/library/alpine:3.19` (no implicit `latest`). */
  toString(): string {
    return `${this.name.toString()}${this.tag ? `:${this.tag}` : ""}${this.digest ? `@${this.digest}` : ""}`;
  }
  /** The short form people type, e.g. `alpine:3.19`. */
  familiar(): string {
    throw new Error("not implemented");
  }
  equals(other: ImageRef): boolean {
    return this.name.equals(other.name) && this.tag === other.tag && this.digest === other.digest;
  }
}

/** Parses an image reference; throws `InvalidImageRefError` and nothing else. */
export function parseImageRef(input: string): ImageRef {
  throw new InvalidImageRefError(input, "not implemented");
}

/** Parses a repository name (no tag, no digest); throws `InvalidImageRefError`. */
export function parseImageName(input: string): ImageName {
  throw new InvalidImageRefError(input, "not implemented");
}
