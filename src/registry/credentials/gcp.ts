/**
 * Google Container Registry and Artifact Registry credentials (Flux v1's
 * `GetGCPOauthToken`): an OAuth2 access token from google-auth-library's application
 * default credentials (metadata server, workload identity, `GOOGLE_APPLICATION_CREDENTIALS`)
 * with username `oauth2accesstoken`, kept until shortly before it expires.
 */

import type { OperationOptions } from "../../abort.js";
import { raceAbort, withTimeout } from "../../abort.js";
import { importOptional } from "../../optional-dependency.js";
import { isGcpRegistryHost } from "./cloud-hosts.js";
import { anonymousOnFailure } from "./cloud-provider.js";
import { CloudCredentialsError, describeCause } from "./errors.js";
import { StoredHostCredential } from "./host-credential.js";
import type { CloudCredentialProvider, CredentialsLogger, HostCredential } from "./types.js";

/** The username GCR and Artifact Registry expect with an access token. */
export const GCP_TOKEN_USERNAME = "oauth2accesstoken";

const SCOPE = "https://www.googleapis.com/auth/cloud-platform";
const FETCH_TIMEOUT_MS = 30_000;

/** Options for a `GcpTokenSource`. */
export interface GcpTokenSourceOptions {
  /** A token is replaced this long before it expires (default 5 minutes). */
  refreshMarginMs?: number | undefined;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: (() => number) | undefined;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** One access token for every Google registry host, cached until shortly before expiry. */
export class GcpTokenSource {
  readonly #marginMs: number;
  readonly #clock: () => number;
  #cached: CachedToken | undefined;
  #inflight: Promise<CachedToken> | undefined;

  constructor(opts: GcpTokenSourceOptions = {}) {
    this.#marginMs = opts.refreshMarginMs ?? 5 * 60_000;
    this.#clock = opts.clock ?? Date.now;
  }

  /** The credential for a Google registry host; throws `CloudCredentialsError`. */
  async credentialFor(host: string, opts: OperationOptions = {}): Promise<HostCredential> {
    if (!isGcpRegistryHost(host)) {
      throw new CloudCredentialsError({
        provider: "gcp",
        host,
        reason: "not a GCR or Artifact Registry host",
      });
    }
    let tok = this.#cached;
    if (tok === undefined || tok.expiresAt - this.#marginMs <= this.#clock()) {
      this.#inflight ??= withTimeout(this.#fetch(host), {
        ms: FETCH_TIMEOUT_MS,
        onTimeout: () =>
          new CloudCredentialsError({
            provider: "gcp",
            host,
            reason: `no access token within ${FETCH_TIMEOUT_MS} ms`,
          }),
      }).finally(() => {
        this.#inflight = undefined;
      });
      tok = await raceAbort(this.#inflight, opts.signal);
    }
    return new StoredHostCredential({
      host,
      username: GCP_TOKEN_USERNAME,
      password: tok.token,
      provenance: "gcp:application-default-credentials",
    });
  }

  async #fetch(host: string): Promise<CachedToken> {
    try {
      const { GoogleAuth } = await importOptional({
        packageName: "google-auth-library",
        feature: "Google (GCR / Artifact Registry) credentials",
        load: () => import("google-auth-library"),
      });
      // A new client each time: the library keeps its own token cache on wall-clock time,
      // and this cache decides when a fresh token is due.
      const client = await new GoogleAuth({ scopes: [SCOPE] }).getClient();
      const started = Date.now();
      const { token } = await client.getAccessToken();
      if (!token) throw new Error("no access token in the answer");
      const expiry = client.credentials.expiry_date;
      const lifetime = typeof expiry === "number" ? expiry - started : 60 * 60_000;
      const cached = { token, expiresAt: this.#clock() + lifetime };
      this.#cached = cached;
      return cached;
    } catch (err) {
      throw new CloudCredentialsError({
        provider: "gcp",
        host,
        reason: `no access token (${describeCause(err)})`,
        cause: err,
      });
    }
  }
}

let defaultSource: GcpTokenSource | undefined;

/**
 * The credential for a GCR / Artifact Registry host (`gcr.io`, `*.gcr.io`,
 * `*-docker.pkg.dev`): username `oauth2accesstoken`, password an access token. Shares one
 * cached token per process. Throws `CloudCredentialsError`.
 */
export function getGCPOAuthToken(
  host: string,
  opts: OperationOptions = {},
): Promise<HostCredential> {
  defaultSource ??= new GcpTokenSource();
  return defaultSource.credentialFor(host, opts);
}

/** Options of the Google provider `Credentials.resolve` asks. */
export interface GcpProviderOptions extends GcpTokenSourceOptions {
  logger?: CredentialsLogger | undefined;
}

/** The Google cloud provider; a failure is logged and the host is tried anonymously. */
export function gcpCloudProvider(opts: GcpProviderOptions = {}): CloudCredentialProvider {
  return anonymousOnFailure({
    name: "gcp",
    cloud: "Google",
    matches: isGcpRegistryHost,
    source: new GcpTokenSource(opts),
    logger: opts.logger,
  });
}
