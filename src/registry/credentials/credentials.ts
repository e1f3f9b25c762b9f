/**
 * Credentials for registries (Flux v1's `registry.Credentials`): static entries from docker
 * config files, plus the dynamic sources asked when a host has no static entry — docker
 * credential helpers, then the host's cloud provider. No secret is ever printed.
 */
import { inspect } from "node:util";
import type { OperationOptions } from "../../abort.js";
import { CredentialHelperRunner } from "./credential-helper.js";
import { parseDockerConfig } from "./docker-config.js";
import { describeCredential } from "./host-credential.js";
import { hostOfServerKey } from "./server-key.js";
import type { CloudCredentialProvider, HostCredential } from "./types.js";

// The type `Credentials` hands out; declared with the other shared types.
export type { HostCredential } from "./types.js";

/** Where the dynamic sources of a `Credentials` come from. */
export interface CredentialsOptions {
  /**
   * Runs credential helpers; share one between `Credentials` to share its answer cache
   * (default: one runner shared by the whole process).
   */
  helperRunner?: CredentialHelperRunner;
  /**
   * Cloud providers asked for hosts with no static entry and no helper answer, in order.
   * Default for `parse()`: none (parsing stays pure); `readDockerConfigFile` and
   * `imageCredsWithDefaults` default to `sharedCloudProviders()`. Pass
   * `defaultCloudProviders({ logger })` to find ECR, GCR / Artifact Registry and ACR
   * credentials by themselves and log their failures.
   */
  cloudProviders?: readonly CloudCredentialProvider[];
  /** Recorded on every parsed credential (default `docker-config:<from>`). */
  provenance?: string;
}

interface HelperConfig {
  readonly credsStore: string | undefined;
  readonly credHelpers: ReadonlyMap<string, string>;
  readonly runner: CredentialHelperRunner | undefined;
}

/**
 * The key to the constructor. ES classes have no `#constructor`, and only this module
 * holds the key, so `Credentials` are made only by its static factories.
 */
const MAKE: unique symbol = Symbol("Credentials");

interface Parts {
  entries: ReadonlyMap<string, HostCredential>;
  helpers: HelperConfig;
  cloud: readonly CloudCredentialProvider[];
}

const NO_HELPERS: HelperConfig = {
  credsStore: undefined,
  credHelpers: new Map(),
  runner: undefined,
};

let sharedRunner: CredentialHelperRunner | undefined;
/** The one empty set (`Credentials.none()`). */
let NONE: Credentials | undefined;

/** The helper runner shared by every `Credentials` that was not given one. */
function defaultHelperRunner(): CredentialHelperRunner {
  sharedRunner ??= new CredentialHelperRunner();
  return sharedRunner;
}

/**
 * A set of credentials by registry host. Immutable: `merge` returns a new set (or one of
 * the two, when the other is empty).
 *
 * `resolve(host)` looks, in order, at: the static entries (docker config `auths`, pull
 * secrets, cloud tokens merged in), the credential helper for the host (`credHelpers`, else
 * `credsStore`), the cloud provider whose host it is, and otherwise answers `undefined`
 * (anonymous).
 */
export class Credentials {
  readonly #entries: ReadonlyMap<string, HostCredential>;
  readonly #helpers: HelperConfig;
  readonly #cloud: readonly CloudCredentialProvider[];

  /** Reachable only from this module (see `MAKE`): use `none`, `parse`, `of`, `fromCloud`, `merge`. */
  constructor(_key: typeof MAKE, parts: Parts) {
    this.#entries = parts.entries;
    this.#helpers = parts.helpers;
    this.#cloud = parts.cloud;
  }

  /** No credentials at all: every host is anonymous, and no helper or cloud is asked. */
  static none(): Credentials {
    // One shared instance: a set is immutable, and a daemon watching 10,000 anonymous
    // repositories asked for one per repository at each refresh of its image list.
    NONE ??= new Credentials(MAKE, { entries: new Map(), helpers: NO_HELPERS, cloud: [] });
    return NONE;
  }

  /**
   * Parses a docker `config.json` (or Kubernetes `.dockercfg`) file's bytes. `from` names
   * the file in errors and provenance. Throws `CredentialsFileError` for any bad input.
   */
  static parse(
    from: string,
    bytes: Uint8Array | string,
    opts: CredentialsOptions = {},
  ): Credentials {
    const content = parseDockerConfig({ from, bytes, provenance: opts.provenance });
    const hasHelpers = content.credsStore !== undefined || content.credHelpers.size > 0;
    return new Credentials(MAKE, {
      entries: content.entries,
      helpers: {
        credsStore: content.credsStore,
        credHelpers: content.credHelpers,
        runner: hasHelpers ? (opts.helperRunner ?? defaultHelperRunner()) : undefined,
      },
      cloud: opts.cloudProviders ?? [],
    });
  }

  /** A set made of the given credentials (keyed by their `host`), e.g. cloud tokens. */
  static of(creds: Iterable<HostCredential>, opts: CredentialsOptions = {}): Credentials {
    const entries = new Map<string, HostCredential>();
    for (const c of creds) {
      const host = hostOfServerKey(c.host);
      if (host !== undefined) entries.set(host, c);
    }
    return new Credentials(MAKE, {
      entries,
      helpers: NO_HELPERS,
      cloud: opts.cloudProviders ?? [],
    });
  }

  /** No static credentials, but the given cloud providers are asked for their hosts. */
  static fromCloud(providers: readonly CloudCredentialProvider[]): Credentials {
    return new Credentials(MAKE, { entries: new Map(), helpers: NO_HELPERS, cloud: providers });
  }

  /** The hosts with static credentials, sorted. */
  hosts(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /**
   * The static credential for a host, given with or without port (`:443` is the same as
   * none) or as any Docker Hub alias.
   */
  credsFor(host: string): HostCredential | undefined {
    const key = hostOfServerKey(host);
    return key === undefined ? undefined : this.#entries.get(key);
  }

  /**
   * The credential for a host: the static entry, else the credential helper's answer, else
   * the cloud provider's; `undefined` means anonymous. A missing or failing credential
   * helper throws `CredentialHelperError`. The default cloud providers log a failure and
   * answer `undefined`, so that public images of a cloud's registry stay reachable.
   */
  async resolve(host: string, opts: OperationOptions = {}): Promise<HostCredential | undefined> {
    const key = hostOfServerKey(host);
    if (key === undefined) return undefined;
    const stored = this.#entries.get(key);
    if (stored) return stored;
    const helper = this.#helpers.credHelpers.get(key) ?? this.#helpers.credsStore;
    if (helper !== undefined) {
      const runner = this.#helpers.runner ?? defaultHelperRunner();
      const answer = await runner.get({ name: helper, host: key }, opts);
      if (answer) return answer;
    }
    for (const provider of this.#cloud) {
      if (provider.matches(key)) return provider.credentialFor(key, opts);
    }
    return undefined;
  }

  /**
   * A new set with this set's entries and `other`'s; per host, `other`'s entries win (static
   * entries and `credHelpers` alike). `other`'s `credsStore`, helper runner and cloud
   * providers replace this set's when it has them.
   */
  merge(other: Credentials): Credentials {
    // Immutable sets: merging in an empty one is the set itself. Each watched repository's
    // set is merged with the configured ones; at 10,000 repositories the copies were 7 MB of
    // a replica's 128 MiB heap (heap snapshot, bench:scale).
    if (other.#isEmpty()) return this;
    if (this.#isEmpty()) return other;
    const entries = new Map(this.#entries);
    for (const [host, cred] of other.#entries) entries.set(host, cred);
    const credHelpers = new Map(this.#helpers.credHelpers);
    for (const [host, name] of other.#helpers.credHelpers) credHelpers.set(host, name);
    return new Credentials(MAKE, {
      entries,
      helpers: {
        credsStore: other.#helpers.credsStore ?? this.#helpers.credsStore,
        credHelpers,
        runner: other.#helpers.runner ?? this.#helpers.runner,
      },
      cloud: other.#cloud.length > 0 ? other.#cloud : this.#cloud,
    });
  }

  /** No entries, helpers, helper runner or cloud providers. */
  #isEmpty(): boolean {
    return (
      this.#entries.size === 0 &&
      this.#helpers.credHelpers.size === 0 &&
      this.#helpers.credsStore === undefined &&
      this.#helpers.runner === undefined &&
      this.#cloud.length === 0
    );
  }

  /** Hosts, usernames and provenance; never a secret. */
  toString(): string {
    const parts = this.hosts().map((h) => describeCredential(this.#entries.get(h)!));
    if (this.#helpers.credsStore) parts.push(`credsStore=${this.#helpers.credsStore}`);
    for (const [host, name] of [...this.#helpers.credHelpers].sort()) {
      parts.push(`credHelpers[${host}]=${name}`);
    }
    if (this.#cloud.length > 0) parts.push(`cloud=${this.#cloud.map((c) => c.name).join(",")}`);
    return `Credentials{${parts.join(", ")}}`;
  }

  toJSON(): {
    credentials: { host: string; username: string | undefined; provenance: string }[];
    credsStore: string | undefined;
    credHelpers: Record<string, string>;
    cloudProviders: string[];
  } {
    return {
      credentials: this.hosts().map((h) => {
        const c = this.#entries.get(h)!;
        return { host: h, username: c.username, provenance: c.provenance };
      }),
      credsStore: this.#helpers.credsStore,
      credHelpers: Object.fromEntries(this.#helpers.credHelpers),
      cloudProviders: this.#cloud.map((c) => c.name),
    };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
