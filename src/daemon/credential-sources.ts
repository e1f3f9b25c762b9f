/**
 * The credential layers around the image lookup, in the documented precedence: an image's
 * own credentials (Kubernetes pull secrets), then mounted pull-secret files, then the docker
 * config's entries and helpers, then the cloud providers; ECR images restricted to the
 * configured regions and accounts as Flux v1 did.
 */
import { access } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import { RegscanError } from "../errors.js";
import { parseImageName } from "../image/ref.js";
import {
  type AWSRegistryConfig,
  imageCredsWithAWSAuth,
} from "../registry/credentials/aws-image-creds.js";
import type { AzureProviderOptions } from "../registry/credentials/azure.js";
import { parseEcrHost } from "../registry/credentials/cloud-hosts.js";
import { defaultCloudProviders } from "../registry/credentials/cloud-providers.js";
import {
  type ImageCreds,
  type ImageCredsLookup,
  imageCredsWithCloudProviders,
  imageCredsWithDefaults,
} from "../registry/credentials/image-creds.js";
import { loadPullSecrets } from "../registry/credentials/pull-secrets.js";

/** A credential provider that `credentials.require` names failed its pre-flight check. */
export class RequiredProviderError extends RegscanError {
  readonly code = "REQUIRED_PROVIDER_FAILED";
}

/** The docker config file to use: the configured one, else docker's default if it exists. */
export async function dockerConfigPath(
  config: Config,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  if (config.credentials.dockerConfig) return config.credentials.dockerConfig;
  const candidate = env.DOCKER_CONFIG
    ? join(env.DOCKER_CONFIG, "config.json")
    : join(homedir(), ".docker", "config.json");
  try {
    await access(candidate);
    return candidate;
  } catch {
    return undefined;
  }
}

/** What {@link withCredentials} wraps, and what it reads its sources' settings from. */
export interface WithCredentialsOptions {
  /** The image lookup whose answers get credentials added. */
  lookup: ImageCredsLookup;
  config: Config;
  /** Where `DOCKER_CONFIG` is read. */
  env: NodeJS.ProcessEnv;
  logger: Logger;
}

/**
 * Wraps `lookup` with every configured credential source. Rejects at once when the docker
 * config cannot be parsed, or when a required provider's pre-flight fails.
 */
export async function withCredentials(opts: WithCredentialsOptions): Promise<ImageCredsLookup> {
  const { lookup, config, env, logger } = opts;
  let out = lookup;

  const secretDir = config.credentials.pullSecretDir;
  if (secretDir) {
    // Checked now so that a bad mount stops startup with the file's name.
    let lastGood = await loadPullSecrets(secretDir);
    const inner = out;
    out = async () => {
      try {
        lastGood = await loadPullSecrets(secretDir);
      } catch (err) {
        logger.warn(
          { dir: secretDir, err: (err as Error).message },
          "pull secrets cannot be read; using the last good ones",
        );
      }
      const images = await inner();
      const merged: ImageCreds = new Map();
      for (const [name, own] of images) merged.set(name, lastGood.merge(own));
      return merged;
    };
  }

  // Asked for registry hosts of their cloud that no other source has credentials for; their
  // SDKs load only when such a host is met. Built here rather than shared so that their
  // failures reach this logger and the configured Azure file is the one read.
  const azure: AzureProviderOptions = {};
  if (config.credentials.azureConfig !== undefined) {
    azure.azureJsonPath = config.credentials.azureConfig;
  }
  const cloudProviders = defaultCloudProviders({ logger, azure });
  const dockerConfig = await dockerConfigPath(config, env);
  if (dockerConfig) {
    out = await imageCredsWithDefaults(out, dockerConfig, { cloudProviders });
    logger.info({ dockerConfig }, "using default credentials from a docker config file");
  } else {
    out = imageCredsWithCloudProviders(out, cloudProviders);
  }

  const ecr = config.credentials.ecr;
  const ecrConfigured =
    ecr.regions.length > 0 ||
    ecr.includeIds.length > 0 ||
    config.credentials.require.includes("ecr");
  let current: ImageCreds = new Map();
  // Empty lists mean "not configured" (the detected region, every account), so they are left out.
  const awsConfig: AWSRegistryConfig = { excludeAccountIds: ecr.excludeIds };
  if (ecr.regions.length > 0) awsConfig.regions = ecr.regions;
  if (ecr.includeIds.length > 0) awsConfig.accountIds = ecr.includeIds;
  const aws = imageCredsWithAWSAuth(() => current, logger, awsConfig);
  if (config.credentials.require.includes("ecr")) {
    try {
      await aws.preflight();
    } catch (err) {
      throw new RequiredProviderError(
        `credentials.require lists "ecr", but its pre-flight check failed: ${(err as Error).message}`,
      );
    }
  }
  const beforeAws = out;
  // `aws.lookup()` reads `current` synchronously on entry, so concurrent calls each see their
  // own answer. The AWS layer (and its region detection) is used only when ECR is configured or an ECR
  // image is watched, so that other setups never wait for the EC2 metadata service.
  return async () => {
    const found = await beforeAws();
    if (!ecrConfigured && ![...found.keys()].some(isEcrImage)) return found;
    current = found;
    return aws.lookup();
  };
}

function isEcrImage(name: string): boolean {
  try {
    return typeof parseEcrHost(parseImageName(name).domain) === "object";
  } catch {
    return false;
  }
}
