/**
 * A cloud credential provider (Google, Azure) that `Credentials.resolve` asks last, after
 * static entries and credential helpers, made from a source that throws when it has none.
 */
import { describeCause } from "./errors.js";
import type { CloudCredentialProvider, CloudCredentialSource, CredentialsLogger } from "./types.js";

/**
 * The provider for a cloud whose registries also serve public images: a failure of
 * `source` is logged (host and cause, never a secret) and the host is tried anonymously;
 * the caller's abort stays an abort.
 */
export function anonymousOnFailure(provider: {
  /** The provider's name, e.g. `gcp`. */
  name: string;
  /** The cloud as log lines name it, e.g. `Google`. */
  cloud: string;
  matches: (host: string) => boolean;
  source: CloudCredentialSource;
  logger: CredentialsLogger | undefined;
}): CloudCredentialProvider {
  const { name, cloud, matches, source, logger } = provider;
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
