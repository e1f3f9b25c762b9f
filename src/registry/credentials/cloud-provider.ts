/**
 * The shape of a cloud credential source (AWS ECR, Google, Azure) that `Credentials.resolve`
 * asks last, after static entries and credential helpers.
 */
import type { OperationOptions } from "../../abort.js";
import type { HostCredential } from "./credentials.js";
import type { CredentialsLogger } from "./ecr.js";
import { describeCause } from "./errors.js";

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

/**
 * The provider for a cloud whose registries also serve public images: a failure of
 * `source` is logged (host and cause, never a secret) and the host is tried anonymously;
 * the caller's abort stays an abort.
 */
export function anonymousOnFailure(
  name: string,
  cloud: string,
  matches: (host: string) => boolean,
  source: CloudCredentialSource,
  logger: CredentialsLogger | undefined,
): CloudCredentialProvider {
  return {
    name,
    matches,
    async credentialFor(host, opts = {}) {
      try {
        return await source.credentialFor(host, opts);
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        logger?.warn(
          { host, err: describeCause(err) },
          `no ${cloud} credentials; trying anonymously`,
        );
        return undefined;
      }
    },
  };
}
