/**
 * The types the credential sources share: a host's credential, the provider shape of each
 * cloud, and the logger they write to. They live here, apart from any implementation, so
 * that the sources import one module instead of each other.
 */
import type { Logger } from "pino";
import type { OperationOptions } from "../../abort.js";

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

/** Produces credentials for the registry hosts of one cloud. */
export interface CloudCredentialProvider {
  /** `aws-ecr`, `gcp` or `azure`; used in errors and logs. */
  readonly name: string;
  /** Whether `host` is one of this cloud's registries; cheap, loads no SDK. */
  matches(host: string): boolean;
  /** A credential for `host`, or `undefined` when this cloud has none to give here. */
  credentialFor(host: string, opts?: OperationOptions): Promise<HostCredential | undefined>;
}

/** A source of one cloud's credentials that throws when it has none. */
export interface CloudCredentialSource {
  credentialFor(host: string, opts?: OperationOptions): Promise<HostCredential>;
}

/** The subset of pino's logger the credential sources write to. */
export type CredentialsLogger = Pick<Logger, "info" | "warn" | "error" | "debug">;
