/**
 * The one implementation of `HostCredential`: the secret lives in `#fields`, so
 * that `toString()`, `JSON.stringify`, `util.inspect` and object spreading show only the
 * host, the username and where the credential came from.
 */
import { inspect } from "node:util";
import type { HostCredential } from "./types.js";

/** What a credential is made of; every secret is optional. */
export interface HostCredentialInit {
  host: string;
  username?: string | undefined;
  password?: string | undefined;
  identityToken?: string | undefined;
  registryToken?: string | undefined;
  provenance: string;
}

/** A credential for one registry host that never shows its secret. */
export class StoredHostCredential implements HostCredential {
  readonly #host: string;
  readonly #username: string | undefined;
  readonly #password: string | undefined;
  readonly #identityToken: string | undefined;
  readonly #registryToken: string | undefined;
  readonly #provenance: string;

  constructor(init: HostCredentialInit) {
    this.#host = init.host;
    this.#username = init.username;
    this.#password = init.password;
    this.#identityToken = init.identityToken;
    this.#registryToken = init.registryToken;
    this.#provenance = init.provenance;
  }

  get host(): string {
    return this.#host;
  }
  get username(): string | undefined {
    return this.#username;
  }
  get password(): string | undefined {
    return this.#password;
  }
  get identityToken(): string | undefined {
    return this.#identityToken;
  }
  get registryToken(): string | undefined {
    return this.#registryToken;
  }
  get provenance(): string {
    return this.#provenance;
  }

  /** The same secret under another host key (Docker Hub aliases, ECR proxy endpoints). */
  forHost(host: string): StoredHostCredential {
    return new StoredHostCredential({
      host,
      username: this.#username,
      password: this.#password,
      identityToken: this.#identityToken,
      registryToken: this.#registryToken,
      provenance: this.#provenance,
    });
  }

  /** e.g. `alice@ghcr.io (docker-config:/home/alice/.docker/config.json)`. */
  toString(): string {
    return describeCredential(this);
  }

  toJSON(): { host: string; username: string | undefined; kind: string; provenance: string } {
    return {
      host: this.#host,
      username: this.#username,
      kind: credentialKind(this),
      provenance: this.#provenance,
    };
  }

  [inspect.custom](): string {
    return `HostCredential { ${this.toString()} }`;
  }
}

/** A description of any `HostCredential` that is safe to log. */
export function describeCredential(cred: HostCredential): string {
  const who = cred.username === undefined || cred.username === "" ? "" : `${cred.username}@`;
  return `${who}${cred.host} [${credentialKind(cred)}] (${cred.provenance})`;
}

/** Which kind of secret a credential carries, without the secret. */
export function credentialKind(cred: HostCredential): string {
  if (cred.registryToken) return "registry-token";
  if (cred.identityToken) return "identity-token";
  if (cred.password !== undefined) return "password";
  return "username-only";
}
