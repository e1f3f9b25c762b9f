/**
 * Credentials for registries (Flux v1's `registry.Credentials`). SKELETON: the credentials
 * work fills in parsing, merging and the dynamic sources; the signatures are the contract
 * that the registry client relies on (`Credentials.none()` and `resolve()`).
 */
import type { OperationOptions } from "../registry.js";

/**
 * One host's credential. The secret is reachable only through `password` / `identityToken`
 * / `registryToken`; `toString()`, `toJSON()` and `util.inspect` never show it.
 */
export interface HostCredential {
  readonly host: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** An OAuth2 refresh token (docker's `identitytoken`) for the token endpoint's POST form. */
  readonly identityToken: string | undefined;
  /** A bearer token to send to the registry as is (docker's `registrytoken`). */
  readonly registryToken: string | undefined;
  /** Where it came from, e.g. `docker-config:/home/me/.docker/config.json`. */
  readonly provenance: string;
  toString(): string;
}

/** A set of credentials by registry host. */
export class Credentials {
  /** No credentials at all: every host is anonymous. */
  static none(): Credentials {
    return new Credentials();
  }

  /** The hosts with credentials. */
  hosts(): string[] {
    return [];
  }

  /** The credential for a host (with or without port), from this set's static entries. */
  credsFor(_host: string): HostCredential | undefined {
    return undefined;
  }

  /**
   * The credential for a host, asking dynamic sources (credential helpers, cloud providers)
   * when there is no static entry; `undefined` means anonymous.
   */
  async resolve(host: string, _opts?: OperationOptions): Promise<HostCredential | undefined> {
    return this.credsFor(host);
  }

  toString(): string {
    return "Credentials{}";
  }
}
