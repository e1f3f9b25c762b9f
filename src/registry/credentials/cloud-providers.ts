/**
 * The cloud providers `Credentials.resolve` asks by default for hosts without static or
 * helper credentials: ECR, then Google, then Azure. Each loads its SDK on first use only.
 */
import { type AzureProviderOptions, azureCloudProvider } from "./azure.js";
import { type EcrProviderOptions, ecrCloudProvider } from "./ecr.js";
import { type GcpProviderOptions, gcpCloudProvider } from "./gcp.js";
import type { CloudCredentialProvider, CredentialsLogger } from "./types.js";

/** Settings per cloud; `false` leaves a cloud out. */
export interface CloudProvidersOptions {
  logger?: CredentialsLogger | undefined;
  aws?: EcrProviderOptions | false | undefined;
  gcp?: GcpProviderOptions | false | undefined;
  azure?: AzureProviderOptions | false | undefined;
}

/** ECR, Google and Azure providers, each with its own token cache. */
export function defaultCloudProviders(opts: CloudProvidersOptions = {}): CloudCredentialProvider[] {
  // A cloud's own logger wins over the shared one.
  const out: CloudCredentialProvider[] = [];
  if (opts.aws !== false) {
    out.push(ecrCloudProvider({ ...opts.aws, logger: opts.aws?.logger ?? opts.logger }));
  }
  if (opts.gcp !== false) {
    out.push(gcpCloudProvider({ ...opts.gcp, logger: opts.gcp?.logger ?? opts.logger }));
  }
  if (opts.azure !== false) {
    out.push(azureCloudProvider({ ...opts.azure, logger: opts.azure?.logger ?? opts.logger }));
  }
  return out;
}

let shared: CloudCredentialProvider[] | undefined;

/**
 * One set of default providers for the whole process, so that every `Credentials` read
 * from a docker config file shares their token caches. Failures are not logged; build your
 * own with `defaultCloudProviders({ logger })` to see them.
 */
export function sharedCloudProviders(): readonly CloudCredentialProvider[] {
  shared ??= defaultCloudProviders();
  return shared;
}
