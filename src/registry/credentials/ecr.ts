/**
 * AWS ECR credentials (Flux v1's `ImageCredsWithAWSAuth`): restricts which ECR registries
 * are scanned (regions, included / excluded accounts) and adds tokens from
 * `GetAuthorizationToken`, fetched per region for all its known accounts in one call, kept
 * until the earliest expiry, with a 10-minute embargo on a region after a failure.
 */

import type { Logger } from "pino";
import type { OperationOptions } from "../../abort.js";
import { raceAbort } from "../../abort.js";
import { parseEcrHost } from "./cloud-hosts.js";
import type { CloudCredentialProvider } from "./cloud-provider.js";
import { Credentials, type HostCredential } from "./credentials.js";
import { type EcrApi, sdkEcrApi } from "./ecr-api.js";
import { CloudCredentialsError, describeCause } from "./errors.js";
import { StoredHostCredential } from "./host-credential.js";
import type { ImageCreds, ImageCredsLookup } from "./image-creds.js";

/** The AWS account that serves EKS system images (aws-node, coredns, ...). */
export const EKS_SYSTEM_ACCOUNT = "602401143452";
/** The same for the China regions. */
export const EKS_SYSTEM_ACCOUNT_CN = "918309763551";

/** ECR tokens are valid for 12 hours; an earlier `expiresAt` shortens that. */
export const ECR_TOKEN_MAX_VALIDITY_MS = 12 * 60 * 60 * 1000;
/** How long a region is left alone after a failed token fetch. */
export const ECR_EMBARGO_MS = 10 * 60 * 1000;

/** The subset of pino's logger the credential sources write to. */
export type CredentialsLogger = Pick<Logger, "info" | "warn" | "error" | "debug">;

/** Constraints and settings for ECR (Flux v1's `AWSRegistryConfig`). */
export interface AWSRegistryConfig {
  /** Regions to scan; default: the region detected from the AWS configuration or IMDS. */
  regions?: string[];
  /** Account IDs to scan; default: all. */
  accountIds?: string[];
  /** Account IDs never scanned; default: `EKS_SYSTEM_ACCOUNT` and `EKS_SYSTEM_ACCOUNT_CN`. */
  excludeAccountIds?: string[];
  /** The ECR API endpoint (e.g. a VPC endpoint); default: the SDK's (`AWS_ENDPOINT_URL_ECR`). */
  endpoint?: string;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: () => number;
  /** The AWS calls; default: `@aws-sdk/client-ecr`, loaded on first use. */
  api?: EcrApi;
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

interface RegionTokens {
  creds: Credentials;
  accounts: Set<string>;
  expiresAt: number;
}

/** ECR tokens per region, with expiry and embargo. */
export class EcrTokenCache {
  readonly #api: EcrApi;
  readonly #clock: () => number;
  readonly #logger: CredentialsLogger | undefined;
  readonly #regions = new Map<string, RegionTokens>();
  readonly #embargo = new Map<string, number>();
  readonly #inflight = new Map<string, Promise<Credentials | undefined>>();

  constructor(api: EcrApi, clock: () => number = Date.now, logger?: CredentialsLogger) {
    this.#api = api;
    this.#clock = clock;
    this.#logger = logger;
  }

  /**
   * Credentials for the region's registries, fetching tokens for `accounts` (and every
   * account already known in the region) in one call when there are none, they expired, or
   * an account is new. `undefined` while the region is under embargo or the fetch failed.
   */
  async ensure(
    region: string,
    accounts: Iterable<string>,
    opts: OperationOptions = {},
  ): Promise<Credentials | undefined> {
    const running = this.#inflight.get(region);
    // Another caller's abort of the shared fetch is not this caller's failure: look again.
    if (running)
      await raceAbort(
        running.catch(() => undefined),
        opts.signal,
      );
    const now = this.#clock();
    const cached = this.#regions.get(region);
    const wanted = new Set(accounts);
    const fresh = cached !== undefined && cached.expiresAt > now;
    if (fresh && [...wanted].every((a) => cached.accounts.has(a))) return cached.creds;
    const embargo = this.#embargo.get(region);
    if (embargo !== undefined) {
      if (embargo > now) return fresh ? cached.creds : undefined;
      this.#embargo.delete(region);
    }
    for (const a of cached?.accounts ?? []) wanted.add(a);
    const fetch = this.#fetch(region, [...wanted].sort(), now, opts).finally(() => {
      this.#inflight.delete(region);
    });
    this.#inflight.set(region, fetch);
    return fetch;
  }

  async #fetch(
    region: string,
    accounts: string[],
    now: number,
    opts: OperationOptions,
  ): Promise<Credentials | undefined> {
    // Forget the old tokens first, so that a failure leaves nothing stale behind.
    this.#regions.delete(region);
    this.#logger?.info({ region, accountIds: accounts }, "fetching ECR auth tokens");
    try {
      const data = await this.#api.getAuthorizationTokens(region, accounts, opts);
      let expiresAt = now + ECR_TOKEN_MAX_VALIDITY_MS;
      const creds: HostCredential[] = [];
      for (const d of data) {
        if (d.expiresAt !== undefined && d.expiresAt < expiresAt) expiresAt = d.expiresAt;
        creds.push(
          new StoredHostCredential({
            host: d.host,
            username: d.username,
            password: d.password,
            provenance: `aws-ecr:${region}`,
          }),
        );
      }
      const entry = { creds: Credentials.of(creds), accounts: new Set(accounts), expiresAt };
      this.#regions.set(region, entry);
      return entry.creds;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      this.#embargo.set(region, now + ECR_EMBARGO_MS);
      this.#logger?.error(
        { region, err: describeCause(err), embargoMs: ECR_EMBARGO_MS },
        "fetching ECR credentials for AWS region failed",
      );
      return undefined;
    }
  }
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
            throw new CloudCredentialsError(
              "aws-ecr",
              "AWS API",
              "no AWS region configured or detected",
            );
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

/** Options of the ECR provider `Credentials.resolve` asks for ECR hosts. */
export interface EcrProviderOptions {
  endpoint?: string;
  clock?: () => number;
  api?: EcrApi;
  logger?: CredentialsLogger;
}

/**
 * A cloud provider for ECR hosts met outside `imageCredsWithAWSAuth` (e.g. `regscan tags
 * <account>.dkr.ecr...`): no region or account restriction, same token cache rules. A
 * failure is logged and the host is tried anonymously.
 */
export function ecrCloudProvider(opts: EcrProviderOptions = {}): CloudCredentialProvider {
  let cache: EcrTokenCache | undefined;
  return {
    name: "aws-ecr",
    matches: (host) => typeof parseEcrHost(host) === "object",
    async credentialFor(host, o = {}) {
      const ecr = parseEcrHost(host);
      if (typeof ecr !== "object") return undefined;
      cache ??= new EcrTokenCache(
        opts.api ?? sdkEcrApi(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        opts.clock,
        opts.logger,
      );
      const creds = await cache.ensure(ecr.region, [ecr.accountId], o);
      return creds?.credsFor(host);
    },
  };
}
