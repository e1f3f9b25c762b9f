/**
 * Flux v1's `ImageCredsWithAWSAuth`: wraps the image lookup so that ECR images outside the
 * configured regions and accounts are dropped and the rest get ECR tokens, merged under
 * each image's own credentials.
 */
import { parseEcrHost } from "./cloud-hosts.js";
import type { Credentials } from "./credentials.js";
import { EcrTokenCache } from "./ecr.js";
import { type EcrApi, sdkEcrApi } from "./ecr-api.js";
import { CloudCredentialsError, describeCause } from "./errors.js";
import type { ImageCreds, ImageCredsLookup } from "./image-creds.js";
import type { CredentialsLogger } from "./types.js";

/** The AWS account that serves EKS system images (aws-node, coredns, ...). */
export const EKS_SYSTEM_ACCOUNT = "602401143452";
/** The same for the China regions. */
export const EKS_SYSTEM_ACCOUNT_CN = "918309763551";

/** Constraints and settings for ECR (Flux v1's `AWSRegistryConfig`). */
export interface AWSRegistryConfig {
  /** Regions to scan; default: the region detected from the AWS configuration or IMDS. */
  regions?: string[] | undefined;
  /** Account IDs to scan; default: all. */
  accountIds?: string[] | undefined;
  /** Account IDs never scanned; default: `EKS_SYSTEM_ACCOUNT` and `EKS_SYSTEM_ACCOUNT_CN`. */
  excludeAccountIds?: string[] | undefined;
  /** The ECR API endpoint (e.g. a VPC endpoint); default: the SDK's (`AWS_ENDPOINT_URL_ECR`). */
  endpoint?: string | undefined;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: (() => number) | undefined;
  /** The AWS calls; default: `@aws-sdk/client-ecr`, loaded on first use. */
  api?: EcrApi | undefined;
}

/** What `imageCredsWithAWSAuth` returns. */
export interface AWSAuth {
  /**
   * Checks once that a region is known and AWS credentials can be found; every call
   * rejects with that one check's error, if it failed.
   */
  preflight(): Promise<void>;
  /** The wrapped lookup: ECR images restricted and given tokens. */
  lookup(): Promise<ImageCreds>;
}

/**
 * Wraps an `ImageCreds` lookup with ECR support, with exactly the semantics of Flux v1:
 *
 * - hosts other than `<account>.dkr.ecr.<region>.amazonaws.com[.cn]` pass through
 *   untouched (ECR Public, `public.ecr.aws`, is anonymous); a host under the AWS suffix of
 *   another shape is logged and passed through;
 * - ECR images outside the regions (configured, else detected, else none) or the accounts
 *   (included ones if given, minus the excluded ones) are removed from the result;
 * - for the rest, tokens from `GetAuthorizationToken` are merged under the image's own
 *   credentials (the image's own win).
 */
export function imageCredsWithAWSAuth(
  lookup: ImageCredsLookup,
  logger: CredentialsLogger,
  config: AWSRegistryConfig = {},
): AWSAuth {
  const api = config.api ?? sdkEcrApi(config.endpoint ? { endpoint: config.endpoint } : {});
  const clock = config.clock ?? Date.now;
  const include = config.accountIds ? new Set(config.accountIds) : undefined;
  const exclude = new Set(config.excludeAccountIds ?? [EKS_SYSTEM_ACCOUNT, EKS_SYSTEM_ACCOUNT_CN]);
  const tokens = new EcrTokenCache(api, clock, logger);
  let regions: Set<string> | undefined = config.regions ? new Set(config.regions) : undefined;
  let okToUseAWS = false;
  let checked: Promise<Error | undefined> | undefined;

  const runPreflight = (): Promise<Error | undefined> => {
    checked ??= (async () => {
      try {
        if (regions === undefined) {
          const detected = await api.detectRegion();
          if (detected) {
            logger.info(detected, "detected cluster region");
            regions = new Set([detected.region]);
          } else {
            throw new CloudCredentialsError({
              provider: "aws-ecr",
              host: "AWS API",
              reason: "no AWS region configured or detected",
            });
          }
        }
        await api.checkCredentials();
        okToUseAWS = true;
        return undefined;
      } catch (err) {
        regions ??= new Set();
        logger.error({ err: describeCause(err) }, "AWS API not available for ECR credentials");
        return err instanceof Error ? err : new Error(describeCause(err));
      } finally {
        logger.info(
          {
            regions: [...(regions ?? [])],
            includeIds: include ? [...include] : "all",
            excludeIds: [...exclude],
          },
          "restricting ECR registry scans",
        );
      }
    })();
    return checked;
  };

  const shouldScan = (region: string, account: string) =>
    (regions?.has(region) ?? false) && (include?.has(account) ?? true) && !exclude.has(account);

  return {
    async preflight() {
      const err = await runPreflight();
      if (err) throw err;
    },
    async lookup() {
      const images = await lookup();
      const out: ImageCreds = new Map(images);
      const wanted: { name: string; region: string; own: Credentials }[] = [];
      const accountsByRegion = new Map<string, Set<string>>();
      for (const [name, own] of images) {
        const domain = name.split("/", 1)[0] ?? "";
        const ecr = parseEcrHost(domain);
        if (ecr === "other") continue;
        if (ecr === "malformed") {
          logger.warn(
            { domain },
            "AWS registry domain not in expected format <account-id>.dkr.ecr.<region>.amazonaws.com",
          );
          continue;
        }
        const preflightErr = await runPreflight();
        if (!shouldScan(ecr.region, ecr.accountId)) {
          out.delete(name);
          continue;
        }
        if (preflightErr) {
          logger.warn(
            { image: name, err: describeCause(preflightErr) },
            "AWS auth implied by ECR image, but AWS API is not available. You can ignore this if you are providing credentials some other way (e.g., through imagePullSecrets)",
          );
          continue;
        }
        wanted.push({ name, region: ecr.region, own });
        const set = accountsByRegion.get(ecr.region) ?? new Set();
        set.add(ecr.accountId);
        accountsByRegion.set(ecr.region, set);
      }
      if (!okToUseAWS) return out;
      const byRegion = new Map<string, Credentials | undefined>();
      await Promise.all(
        [...accountsByRegion].map(async ([region, accounts]) => {
          byRegion.set(region, await tokens.ensure(region, accounts));
        }),
      );
      for (const w of wanted) {
        const regionCreds = byRegion.get(w.region);
        if (regionCreds) out.set(w.name, regionCreds.merge(w.own));
      }
      return out;
    },
  };
}
