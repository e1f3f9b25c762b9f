/**
 * The AWS calls ECR credentials need, through the official SDK loaded on first use:
 * the region from the SDK's region chain, whether AWS credentials can be found (the
 * standard chain), and `GetAuthorizationToken` for several registries of a region at once.
 */

import type { ECRClientConfig } from "@aws-sdk/client-ecr";
import type { OperationOptions } from "../../abort.js";
import { importOptional } from "../../optional-dependency.js";
import { CloudCredentialsError, describeCause } from "./errors.js";
import { hostOfServerKey } from "./server-key.js";

/** One registry's ECR credential: always username `AWS`. */
export interface EcrAuthorization {
  host: string;
  username: string;
  password: string;
  /** Milliseconds since the epoch. */
  expiresAt: number | undefined;
}

/** What the ECR credential code asks of AWS; the default is the SDK, tests may inject. */
export interface EcrApi {
  /** The region from the AWS configuration, else the instance metadata service. */
  detectRegion(opts?: OperationOptions): Promise<{ region: string; source: string } | undefined>;
  /** Resolves AWS credentials through the standard chain; throws when there are none. */
  checkCredentials(opts?: OperationOptions): Promise<void>;
  /** `GetAuthorizationToken` for `accountIds` in `region`, in one call. */
  getAuthorizationTokens(
    region: string,
    accountIds: readonly string[],
    opts?: OperationOptions,
  ): Promise<EcrAuthorization[]>;
}

/** Options for the SDK-backed `EcrApi`. */
export interface SdkEcrApiOptions {
  /**
   * The ECR API endpoint (a VPC endpoint, or a test server); default: the SDK's choice,
   * which honours `AWS_ENDPOINT_URL_ECR` and `AWS_ENDPOINT_URL`.
   */
  endpoint?: string;
}

/** The `EcrApi` of `@aws-sdk/client-ecr`, imported only when first used. */
export function sdkEcrApi(opts: SdkEcrApiOptions = {}): EcrApi {
  const clientConfig = (region?: string) => {
    const config: ECRClientConfig = {
      maxAttempts: 2,
      // Nothing waits forever: bounded connect and request times.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
    };
    // Set only when known: the SDK's own region and endpoint resolution applies otherwise.
    if (region) config.region = region;
    if (opts.endpoint) config.endpoint = opts.endpoint;
    return config;
  };
  return {
    async detectRegion(o = {}) {
      o.signal?.throwIfAborted();
      const { ECRClient } = await loadEcr();
      const client = new ECRClient(clientConfig());
      try {
        // The SDK's region chain: AWS_REGION, the shared config profile, then the EC2
        // instance metadata service (AWS_EC2_METADATA_SERVICE_ENDPOINT / _DISABLED honoured).
        const region = await client.config.region();
        return region
          ? { region, source: "AWS configuration or EC2 instance metadata" }
          : undefined;
      } catch {
        return undefined;
      } finally {
        client.destroy();
      }
    },
    async checkCredentials() {
      const { ECRClient } = await loadEcr();
      const client = new ECRClient(clientConfig("us-east-1"));
      try {
        await client.config.credentials();
      } catch (err) {
        throw new CloudCredentialsError({
          provider: "aws-ecr",
          host: "AWS API",
          reason: `no AWS credentials (${describeCause(err)})`,
          cause: err,
        });
      } finally {
        client.destroy();
      }
    },
    async getAuthorizationTokens(region, accountIds, o = {}) {
      const { ECRClient, GetAuthorizationTokenCommand } = await loadEcr();
      const client = new ECRClient(clientConfig(region));
      try {
        const out = await client.send(
          new GetAuthorizationTokenCommand({ registryIds: [...accountIds] }),
          o.signal ? { abortSignal: o.signal } : {},
        );
        return (out.authorizationData ?? []).map((d) => decodeAuthorization(region, d));
      } catch (err) {
        if (err instanceof CloudCredentialsError) throw err;
        throw new CloudCredentialsError({
          provider: "aws-ecr",
          host: region,
          reason: `GetAuthorizationToken failed (${describeCause(err)})`,
          cause: err,
        });
      } finally {
        client.destroy();
      }
    },
  };
}

function decodeAuthorization(
  region: string,
  d: {
    authorizationToken?: string | undefined;
    proxyEndpoint?: string | undefined;
    expiresAt?: Date | undefined;
  },
): EcrAuthorization {
  const host = hostOfServerKey(d.proxyEndpoint ?? "");
  const decoded = Buffer.from(d.authorizationToken ?? "", "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (host === undefined || colon < 0) {
    throw new CloudCredentialsError({
      provider: "aws-ecr",
      host: region,
      reason: "GetAuthorizationToken answered with malformed data",
    });
  }
  return {
    host,
    username: decoded.slice(0, colon),
    password: decoded.slice(colon + 1),
    expiresAt: d.expiresAt?.getTime(),
  };
}

/** The AWS SDK's ECR client, an optional dependency. */
function loadEcr(): Promise<typeof import("@aws-sdk/client-ecr")> {
  return importOptional({
    packageName: "@aws-sdk/client-ecr",
    feature: "AWS ECR credentials",
    load: () => import("@aws-sdk/client-ecr"),
  });
}
