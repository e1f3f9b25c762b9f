/**
 * AWS ECR tokens: `GetAuthorizationToken` fetched per region for all its known accounts in
 * one call, kept until the earliest expiry, with a 10-minute embargo on a region after a
 * failure; and the cloud provider that `Credentials.resolve` asks for ECR hosts.
 */
import type { OperationOptions } from "../../abort.js";
import { raceAbort } from "../../abort.js";
import { parseEcrHost } from "./cloud-hosts.js";
import { Credentials } from "./credentials.js";
import { type EcrApi, sdkEcrApi } from "./ecr-api.js";
import { describeCause } from "./errors.js";
import { StoredHostCredential } from "./host-credential.js";
import type { CloudCredentialProvider, CredentialsLogger, HostCredential } from "./types.js";

/** ECR tokens are valid for 12 hours; an earlier `expiresAt` shortens that. */
export const ECR_TOKEN_MAX_VALIDITY_MS = 12 * 60 * 60 * 1000;
/** How long a region is left alone after a failed token fetch. */
export const ECR_EMBARGO_MS = 10 * 60 * 1000;

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
    const fetch = this.#fetch({ region, accounts: [...wanted].sort(), now, opts }).finally(() => {
      this.#inflight.delete(region);
    });
    this.#inflight.set(region, fetch);
    return fetch;
  }

  async #fetch(job: {
    region: string;
    accounts: string[];
    /** The clock's time at the call, from which the tokens' validity counts. */
    now: number;
    opts: OperationOptions;
  }): Promise<Credentials | undefined> {
    const { region, accounts, now, opts } = job;
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

/** Options of the ECR provider `Credentials.resolve` asks for ECR hosts. */
export interface EcrProviderOptions {
  endpoint?: string | undefined;
  clock?: (() => number) | undefined;
  api?: EcrApi | undefined;
  logger?: CredentialsLogger | undefined;
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
