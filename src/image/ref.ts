/**
 * Image references as `docker pull` understands them (the distribution reference grammar),
 * with Docker Hub normalisation: `alpine` is `docker.io/library/alpine`. The parser splits
 * the input into pieces itself so that each error says which piece is wrong.
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

/** Docker Hub's canonical domain. */
export const DOCKER_HUB_DOMAIN = "docker.io";
/** The host Docker Hub's registry API answers on. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";
/** Docker Hub's legacy domain, normalised to `docker.io`. */
export const DOCKER_HUB_LEGACY_DOMAIN = "index.docker.io";
/** The namespace of Docker Hub's official images. */
const OFFICIAL_PREFIX = "library/";
/** Longest repository name (domain, `/` and path) the distribution grammar accepts. */
export const NAME_TOTAL_LENGTH_MAX = 255;

// The pieces of the grammar, each anchored; they are applied to pieces already split
// apart, so none of them can backtrack across a separator.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_NAME_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_LITERAL = /^\[[a-fA-F0-9:]+\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^\w[\w.-]{0,127}$/;
const IDENTIFIER = /^[a-f0-9]{64}$/;
const DIGEST_SHAPE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
/** Hex length of each digest algorithm that docker, containerd and the registry accept. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = {
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

/** A repository: registry domain plus path, e.g. `docker.io/library/alpine`. */
export class ImageName {
  /** {@link toString}'s text, made once: the API names a repository by it several times a read. */
  #text: string | undefined;

  constructor(
    /** Canonical domain, e.g. `docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000`. */
    readonly domain: string,
    /** Repository path, e.g. `library/alpine`. */
    readonly path: string,
  ) {}

  /** The host to send API requests to: `registry-1.docker.io` for Docker Hub, else `domain`. */
  get apiHost(): string {
    return this.domain === DOCKER_HUB_DOMAIN ? DOCKER_HUB_API_HOST : this.domain;
  }

  /** Canonical repository name, e.g. `docker.io/library/alpine`. */
  toString(): string {
    this.#text ??= `${this.domain}/${this.path}`;
    return this.#text;
  }

  /**
   * The short form people type, e.g. `alpine`, `user/app`, `ghcr.io/a/b`: distribution's
   * `FamiliarName`, except where that would not parse back to the same name. A Docker Hub
   * path whose first component would be read back as a domain (`docker.io/foo.bar/x`)
   * keeps its `docker.io/`, and so does an official name of 64 hex digits, which alone
   * would be read back as an image ID (`docker.io/<hex>`; with a tag or a digest it needs
   * no domain, see `ImageRef.familiar`).
   */
  familiar(): string {
    return familiarName(this, true);
  }

  /** A reference to a tag of this repository. */
  withTag(tag: string): ImageRef {
    return new ImageRef({ name: this, tag });
  }

  /** A reference to a digest of this repository. */
  withDigest(digest: string): ImageRef {
    return new ImageRef({ name: this, digest });
  }

  equals(other: ImageName): boolean {
    return this.domain === other.domain && this.path === other.path;
  }
}

/** A parsed image reference: a repository with an optional tag and an optional digest. */
export class ImageRef {
  readonly name: ImageName;
  readonly tag: string | undefined;
  readonly digest: string | undefined;

  /** Made by `parseImageRef` and `ImageName.withTag` / `withDigest`; the parts are not checked. */
  constructor(parts: { name: ImageName; tag?: string | undefined; digest?: string | undefined }) {
    this.name = parts.name;
    this.tag = parts.tag;
    this.digest = parts.digest;
  }

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
    return `${this.name.toString()}${suffix(this.tag, this.digest)}`;
  }
  /**
   * The short form people type, e.g. `alpine:3.19`: distribution's `FamiliarString`,
   * except that a name whose familiar form would not parse back keeps its `docker.io/`
   * (see `ImageName.familiar`). Only a bare 64-hex name is taken for an image ID, so
   * `<hex>:tag` and `<hex>@sha256:...` print short, as docker prints them.
   */
  familiar(): string {
    const bare = this.tag === undefined && this.digest === undefined;
    return `${familiarName(this.name, bare)}${suffix(this.tag, this.digest)}`;
  }
  equals(other: ImageRef): boolean {
    return this.name.equals(other.name) && this.tag === other.tag && this.digest === other.digest;
  }
}

/**
 * A name's familiar form; `bare` says nothing (no tag, no digest) follows it, which is
 * when a 64-hex official name would be read back as an image ID.
 */
function familiarName(name: ImageName, bare: boolean): string {
  if (name.domain !== DOCKER_HUB_DOMAIN) return name.toString();
  if (name.path.startsWith(OFFICIAL_PREFIX)) {
    const rest = name.path.slice(OFFICIAL_PREFIX.length);
    if (!rest.includes("/"))
      return bare && IDENTIFIER.test(rest) ? `${DOCKER_HUB_DOMAIN}/${rest}` : rest;
  }
  const slash = name.path.indexOf("/");
  if (slash === -1) return name.toString();
  return looksLikeDomain(name.path.slice(0, slash)) ? name.toString() : name.path;
}

function suffix(tag: string | undefined, digest: string | undefined): string {
  return `${tag !== undefined ? `:${tag}` : ""}${digest !== undefined ? `@${digest}` : ""}`;
}

/** Whether distribution's normaliser reads a first path component as a registry domain. */
function looksLikeDomain(first: string): boolean {
  return (
    first === "localhost" ||
    first.includes(".") ||
    first.includes(":") ||
    first.toLowerCase() !== first
  );
}

/**
 * Parses an image reference (`[domain/]path[:tag][@digest]`) and normalises Docker Hub
 * names; throws `InvalidImageRefError` and nothing else, whatever the input.
 */
export function parseImageRef(input: string): ImageRef {
  if (typeof input !== "string") {
    throw new InvalidImageRefError(`<${typeof input}>`, "not a string");
  }
  if (input === "") throw new InvalidImageRefError(input, "empty");
  if (IDENTIFIER.test(input)) {
    throw new InvalidImageRefError(
      input,
      "a 64-character hexadecimal string is an image ID, not a repository name",
    );
  }
  const at = input.indexOf("@");
  const beforeDigest = at === -1 ? input : input.slice(0, at);
  const digest = at === -1 ? undefined : input.slice(at + 1);
  if (digest !== undefined) checkDigest(input, digest);

  // A tag can hold neither `/` nor `:`, so a `:` after the last `/` starts the tag; a
  // domain's port always comes before some `/`.
  const colon = beforeDigest.lastIndexOf(":");
  const hasTag = colon !== -1 && colon > beforeDigest.lastIndexOf("/");
  const nameText = hasTag ? beforeDigest.slice(0, colon) : beforeDigest;
  const tag = hasTag ? beforeDigest.slice(colon + 1) : undefined;
  if (tag !== undefined && !TAG.test(tag)) {
    throw new InvalidImageRefError(
      input,
      `invalid tag ${JSON.stringify(tag)}: a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with "." or "-"`,
    );
  }
  return new ImageRef({ name: nameFrom(input, nameText), tag, digest });
}

/** Parses a repository name (no tag, no digest); throws `InvalidImageRefError`. */
export function parseImageName(input: string): ImageName {
  const ref = parseImageRef(input);
  if (ref.digest !== undefined) {
    throw new InvalidImageRefError(input, "a repository name cannot have a digest");
  }
  if (ref.tag !== undefined) {
    throw new InvalidImageRefError(input, "a repository name cannot have a tag");
  }
  return ref.name;
}

function checkDigest(input: string, digest: string): void {
  const colon = digest.indexOf(":");
  const algorithm = colon === -1 ? digest : digest.slice(0, colon);
  const hex = colon === -1 ? "" : digest.slice(colon + 1);
  const expected = Object.hasOwn(DIGEST_HEX_LENGTH, algorithm)
    ? DIGEST_HEX_LENGTH[algorithm]
    : undefined;
  if (expected === undefined) {
    const why = DIGEST_SHAPE.test(digest)
      ? `unsupported digest algorithm ${JSON.stringify(algorithm)}`
      : `invalid digest ${JSON.stringify(digest)}`;
    throw new InvalidImageRefError(input, `${why} (expected sha256, sha384 or sha512)`);
  }
  if (hex.length !== expected || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidImageRefError(
      input,
      `invalid digest ${JSON.stringify(digest)}: ${algorithm} needs ${expected} lower-case hex digits`,
    );
  }
}

/** Splits off the domain as distribution's `splitDockerDomain` does, then checks both parts. */
function nameFrom(input: string, text: string): ImageName {
  const slash = text.indexOf("/");
  let domain = DOCKER_HUB_DOMAIN;
  let path = text;
  if (slash !== -1 && looksLikeDomain(text.slice(0, slash))) {
    domain = text.slice(0, slash);
    path = text.slice(slash + 1);
    checkDomain(input, domain);
  }
  if (domain === DOCKER_HUB_LEGACY_DOMAIN) domain = DOCKER_HUB_DOMAIN;
  if (domain === DOCKER_HUB_DOMAIN && !path.includes("/")) path = OFFICIAL_PREFIX + path;
  checkPath(input, path);
  const length = domain.length + 1 + path.length;
  if (length > NAME_TOTAL_LENGTH_MAX) {
    throw new InvalidImageRefError(
      input,
      `repository name is ${length} characters long, more than ${NAME_TOTAL_LENGTH_MAX}`,
    );
  }
  return new ImageName(domain, path);
}

function checkDomain(input: string, domain: string): void {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith("[")) {
    const close = domain.indexOf("]");
    host = close === -1 ? domain : domain.slice(0, close + 1);
    const rest = close === -1 ? "" : domain.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) {
        throw new InvalidImageRefError(
          input,
          `invalid domain ${JSON.stringify(domain)}: only ":port" may follow an IPv6 address`,
        );
      }
      port = rest.slice(1);
    }
    if (!IPV6_LITERAL.test(host)) {
      throw new InvalidImageRefError(
        input,
        `invalid domain ${JSON.stringify(domain)}: an IPv6 address must be hex digits and colons in brackets`,
      );
    }
  } else {
    const colon = domain.indexOf(":");
    if (colon !== -1) {
      host = domain.slice(0, colon);
      port = domain.slice(colon + 1);
    }
    if (!host.split(".").every((c) => DOMAIN_NAME_COMPONENT.test(c))) {
      throw new InvalidImageRefError(
        input,
        `invalid domain ${JSON.stringify(domain)}: each dot-separated part must be letters, digits and inner hyphens`,
      );
    }
  }
  if (port !== undefined && !PORT.test(port)) {
    throw new InvalidImageRefError(
      input,
      `invalid domain ${JSON.stringify(domain)}: the port must be a number`,
    );
  }
  // The grammar allows any digits, but a URL cannot carry port 0 or one past 65535: such a
  // name would only fail later, far from the input, when a request URL is built.
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65_535)) {
    throw new InvalidImageRefError(
      input,
      `invalid domain ${JSON.stringify(domain)}: the port must be between 1 and 65535`,
    );
  }
}

function checkPath(input: string, path: string): void {
  if (path.toLowerCase() !== path) {
    throw new InvalidImageRefError(
      input,
      `repository name must be lowercase (${JSON.stringify(path)})`,
    );
  }
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      const what = component === "" ? "an empty path component" : JSON.stringify(component);
      throw new InvalidImageRefError(
        input,
        `invalid repository path ${JSON.stringify(path)}: ${what} (components are [a-z0-9] separated by ".", "_", "__" or dashes)`,
      );
    }
  }
}
