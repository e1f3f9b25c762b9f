/**
 * `ImageCreds`: the repositories to watch, each with the credentials to use for it (Flux
 * v1's `registry.ImageCreds`), the lookup function that produces it, and the wrapper that
 * merges a docker config file's credentials under each repository's own.
 */
import {
  BoundedFileError,
  DOCKER_CONFIG_MAX_BYTES,
  readBoundedFile,
} from "../../files/bounded-file.js";
import { sharedCloudProviders } from "./cloud-providers.js";
import { Credentials, type CredentialsOptions } from "./credentials.js";
import { CredentialsFileError, describeCause } from "./errors.js";
import type { CloudCredentialProvider } from "./types.js";

/** Credentials by canonical repository name (`ImageName.toString()`). */
export type ImageCreds = Map<string, Credentials>;

/** Produces the current set of repositories and their credentials; asked again every interval. */
export type ImageCredsLookup = () => ImageCreds | Promise<ImageCreds>;

/**
 * Reads and parses a docker config file; any failure is a `CredentialsFileError` naming it
 * (with the `fs` error as `cause`, so `cause.code === "ENOENT"` tells a missing file). Unless
 * `opts.cloudProviders` says otherwise (`[]` for none), the result asks the process's shared
 * cloud providers (ECR, Google, Azure) for their hosts, as the documented precedence says.
 */
export async function readDockerConfigFile(
  path: string,
  opts: CredentialsOptions = {},
): Promise<Credentials> {
  let bytes: Buffer;
  try {
    // Bounded, and regular files only: `/dev/zero` or a FIFO named as the config must fail.
    bytes = await readBoundedFile(path, DOCKER_CONFIG_MAX_BYTES);
  } catch (err) {
    const reason = err instanceof BoundedFileError ? err.reason : describeCause(err);
    throw new CredentialsFileError({
      file: path,
      reason: `cannot be read (${reason})`,
      cause: err,
    });
  }
  return Credentials.parse(path, bytes, {
    ...opts,
    cloudProviders: opts.cloudProviders ?? sharedCloudProviders(),
  });
}

/**
 * Wraps `lookup` so that every repository's credentials are the docker config file's
 * defaults with the repository's own merged over them (the repository's own win, per host).
 *
 * Checks first that the file can be read and parsed (rejecting with a `CredentialsFileError`
 * naming it), then reads it again on every call so that a rotated secret is picked up. When
 * a later read fails (a file caught half-written), the last good defaults are used.
 */
export async function imageCredsWithDefaults(
  lookup: ImageCredsLookup,
  configPath: string,
  opts: CredentialsOptions = {},
): Promise<() => Promise<ImageCreds>> {
  let lastGood = await readDockerConfigFile(configPath, opts);
  return async () => {
    try {
      lastGood = await readDockerConfigFile(configPath, opts);
    } catch {
      // keep lastGood: see above
    }
    const defaults = lastGood;
    const images = await lookup();
    const out: ImageCreds = new Map();
    for (const [name, own] of images) out.set(name, defaults.merge(own));
    return out;
  };
}

/**
 * Wraps `lookup` so that every repository's credentials also ask `providers` (e.g.
 * `defaultCloudProviders({ logger })`) for cloud hosts; for a deployment with no docker
 * config file. A repository's own cloud providers, if it has any, are kept.
 */
export function imageCredsWithCloudProviders(
  lookup: ImageCredsLookup,
  providers: readonly CloudCredentialProvider[],
): () => Promise<ImageCreds> {
  const base = Credentials.fromCloud(providers);
  return async () => {
    const out: ImageCreds = new Map();
    for (const [name, own] of await lookup()) out.set(name, base.merge(own));
    return out;
  };
}
