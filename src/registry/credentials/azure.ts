/**
 * Azure Container Registry credentials: the service principal of `/etc/kubernetes/azure.json`
 * used directly (as Flux v1 did), else an Entra ID token from `@azure/identity` (environment,
 * workload identity, managed identity) exchanged at `POST https://<registry>/oauth2/exchange`
 * for an ACR refresh token, kept until shortly before it expires.
 */
import type { TokenCredential } from "@azure/identity";
import type { OperationOptions } from "../../abort.js";
import { raceAbort, withTimeout } from "../../abort.js";
import { CONFIG_FILE_MAX_BYTES, readBoundedTextFile } from "../../files/bounded-file.js";
import { importOptional } from "../../optional-dependency.js";
import { isAzureRegistryHost } from "./cloud-hosts.js";
import { anonymousOnFailure } from "./cloud-provider.js";
import { CloudCredentialsError, describeCause } from "./errors.js";
import { StoredHostCredential } from "./host-credential.js";
import type { CloudCredentialProvider, CredentialsLogger, HostCredential } from "./types.js";

/** The username ACR expects with a refresh token. */
export const ACR_REFRESH_TOKEN_USERNAME = "00000000-0000-0000-0000-000000000000";

/** Where AKS (and Flux v1) put the cluster's cloud provider configuration. */
export const DEFAULT_AZURE_JSON = "/etc/kubernetes/azure.json";

const MAX_ANSWER = 1024 * 1024;
const FETCH_TIMEOUT_MS = 30_000;

/**
 * What regscan needs of an Entra ID credential: the shape of `@azure/identity`'s
 * `TokenCredential`, declared here so that the public types do not need that optional package
 * (any `TokenCredential` fits).
 */
export interface EntraTokenCredential {
  getToken(
    scopes: string | string[],
    options?: { abortSignal?: AbortSignal },
  ): Promise<{ token: string } | null>;
}

/** Options for ACR credentials. */
export interface AcrOptions {
  /** The cloud provider config with `aadClientId` / `aadClientSecret` (default `/etc/kubernetes/azure.json`). */
  azureJsonPath?: string | undefined;
  /** The exchange endpoint for a registry (default `https://<host>/oauth2/exchange`). */
  exchangeUrl?: ((host: string) => string) | undefined;
  /** The Entra ID credential (default: environment, workload identity, managed identity). */
  tokenCredential?: EntraTokenCredential | undefined;
  /**
   * The Entra ID authority of the default credential, e.g. `https://login.chinacloudapi.cn`
   * (default: `AZURE_AUTHORITY_HOST`, else the public cloud). Must be https.
   */
  authorityHost?: string | undefined;
  /**
   * Skip MSAL's instance discovery, which asks login.microsoftonline.com whether an authority
   * outside the built-in clouds is genuine: needed for Azure Stack, an in-house authority or a
   * proxy, where that question cannot be asked or has no answer.
   */
  disableInstanceDiscovery?: boolean | undefined;
  /** A refresh token is replaced this long before it expires (default 5 minutes). */
  refreshMarginMs?: number | undefined;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: (() => number) | undefined;
}

interface AzureJson {
  aadClientId?: string | undefined;
  aadClientSecret?: string | undefined;
  tenantId?: string | undefined;
  useManagedIdentityExtension?: boolean;
  userAssignedIdentityID?: string | undefined;
}

interface Cached {
  cred: HostCredential;
  expiresAt: number;
}

/** ACR credentials per registry host, cached until shortly before they expire. */
export class AcrTokenSource {
  readonly #opts: AcrOptions;
  readonly #marginMs: number;
  readonly #clock: () => number;
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<Cached>>();
  #credential: EntraTokenCredential | undefined;

  constructor(opts: AcrOptions = {}) {
    this.#opts = opts;
    this.#marginMs = opts.refreshMarginMs ?? 5 * 60_000;
    this.#clock = opts.clock ?? Date.now;
  }

  /** The credential for an ACR host; throws `CloudCredentialsError`. */
  async credentialFor(host: string, opts: OperationOptions = {}): Promise<HostCredential> {
    if (!isAzureRegistryHost(host)) {
      throw new CloudCredentialsError({
        provider: "azure",
        host,
        reason: "not an Azure Container Registry host",
      });
    }
    const cached = this.#cache.get(host);
    if (cached && cached.expiresAt - this.#marginMs > this.#clock()) return cached.cred;
    let running = this.#inflight.get(host);
    if (!running) {
      running = withTimeout(
        // Shared by every caller: one caller giving up does not cancel it for the others.
        this.#fetch(host, AbortSignal.timeout(FETCH_TIMEOUT_MS)),
        {
          ms: FETCH_TIMEOUT_MS,
          onTimeout: () =>
            new CloudCredentialsError({
              provider: "azure",
              host,
              reason: `no credential within ${FETCH_TIMEOUT_MS} ms`,
            }),
        },
      ).finally(() => this.#inflight.delete(host));
      this.#inflight.set(host, running);
    }
    return (await raceAbort(running, opts.signal)).cred;
  }

  async #fetch(host: string, signal: AbortSignal | undefined): Promise<Cached> {
    const path = this.#opts.azureJsonPath ?? DEFAULT_AZURE_JSON;
    const cfg = await readAzureJson(path, host);
    if (
      cfg?.aadClientId &&
      cfg.aadClientSecret &&
      !cfg.useManagedIdentityExtension &&
      cfg.aadClientId !== "msi"
    ) {
      // Flux v1's way: ACR accepts a service principal's id and secret as Basic credentials.
      const cred = new StoredHostCredential({
        host,
        username: cfg.aadClientId,
        password: cfg.aadClientSecret,
        provenance: `azure-json:${path}`,
      });
      // Re-read now and then so that a rotated secret is picked up.
      const entry = { cred, expiresAt: this.#clock() + this.#marginMs + 60 * 60_000 };
      this.#cache.set(host, entry);
      return entry;
    }
    const credential = await this.#tokenCredential(cfg);
    let aad: string;
    try {
      const token = await credential.getToken(
        scopeFor(host),
        signal ? { abortSignal: signal } : {},
      );
      if (!token?.token) throw new Error("no token");
      aad = token.token;
    } catch (err) {
      throw new CloudCredentialsError({
        provider: "azure",
        host,
        reason: `no Entra ID token (${describeCause(err)})`,
        cause: err,
      });
    }
    const tenant = jwtClaims(aad)?.tid ?? process.env.AZURE_TENANT_ID ?? cfg?.tenantId;
    const refresh = await exchange({
      host,
      url: this.#exchangeUrl(host),
      aadToken: aad,
      tenant,
      signal,
    });
    const exp = jwtClaims(refresh)?.exp;
    const expiresAt = typeof exp === "number" ? exp * 1000 : this.#clock() + 60 * 60_000;
    const entry = {
      cred: new StoredHostCredential({
        host,
        username: ACR_REFRESH_TOKEN_USERNAME,
        password: refresh,
        provenance: "azure:entra-id-exchange",
      }),
      expiresAt,
    };
    this.#cache.set(host, entry);
    return entry;
  }

  #exchangeUrl(host: string): string {
    return this.#opts.exchangeUrl
      ? this.#opts.exchangeUrl(host)
      : `https://${host}/oauth2/exchange`;
  }

  async #tokenCredential(cfg: AzureJson | undefined): Promise<EntraTokenCredential> {
    if (this.#opts.tokenCredential) return this.#opts.tokenCredential;
    if (this.#credential) return this.#credential;
    const id = await importOptional({
      packageName: "@azure/identity",
      feature: "Azure (ACR) credentials",
      load: () => import("@azure/identity"),
    });
    if (cfg?.useManagedIdentityExtension) {
      const clientId = cfg.userAssignedIdentityID;
      this.#credential = clientId
        ? new id.ManagedIdentityCredential({ clientId })
        : new id.ManagedIdentityCredential();
    } else {
      // Set only when configured: the SDK's own defaults apply otherwise.
      const authority: { authorityHost?: string; disableInstanceDiscovery?: boolean } = {};
      if (this.#opts.authorityHost) authority.authorityHost = this.#opts.authorityHost;
      if (this.#opts.disableInstanceDiscovery) authority.disableInstanceDiscovery = true;
      const chain: TokenCredential[] = [new id.EnvironmentCredential(authority)];
      if (process.env.AZURE_FEDERATED_TOKEN_FILE) {
        chain.push(new id.WorkloadIdentityCredential(authority));
      }
      const clientId = process.env.AZURE_CLIENT_ID;
      chain.push(
        clientId
          ? new id.ManagedIdentityCredential({ clientId })
          : new id.ManagedIdentityCredential(),
      );
      this.#credential = new id.ChainedTokenCredential(...chain);
    }
    return this.#credential;
  }
}

async function readAzureJson(path: string, host: string): Promise<AzureJson | undefined> {
  let text: string;
  try {
    // Bounded, and regular files only: a FIFO or a device named as the config must fail.
    text = await readBoundedTextFile(path, CONFIG_FILE_MAX_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CloudCredentialsError({
      provider: "azure",
      host,
      reason: `cannot read ${path} (${describeCause(err)})`,
    });
  }
  try {
    const doc: unknown = JSON.parse(text);
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new Error();
    const d = doc as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
    return {
      aadClientId: str(d.aadClientId),
      aadClientSecret: str(d.aadClientSecret),
      tenantId: str(d.tenantId),
      useManagedIdentityExtension: d.useManagedIdentityExtension === true,
      userAssignedIdentityID: str(d.userAssignedIdentityID),
    };
  } catch {
    throw new CloudCredentialsError({
      provider: "azure",
      host,
      reason: `${path} is not a JSON object`,
    });
  }
}

/** The Azure Resource Manager audience of the registry's cloud. */
function scopeFor(host: string): string {
  const h = host.toLowerCase();
  if (h.endsWith(".azurecr.cn")) return "https://management.chinacloudapi.cn/.default";
  if (h.endsWith(".azurecr.us")) return "https://management.usgovcloudapi.net/.default";
  if (h.endsWith(".azurecr.de")) return "https://management.microsoftazure.de/.default";
  return "https://management.azure.com/.default";
}

/** An Entra ID token exchanged at the registry's `/oauth2/exchange` for an ACR refresh token. */
async function exchange(exchanged: {
  host: string;
  url: string;
  aadToken: string;
  tenant: string | undefined;
  signal: AbortSignal | undefined;
}): Promise<string> {
  const { host, url, aadToken, tenant, signal } = exchanged;
  const form = new URLSearchParams({
    grant_type: "access_token",
    service: host,
    access_token: aadToken,
  });
  if (tenant) form.set("tenant", tenant);
  const bounded = signal
    ? AbortSignal.any([signal, AbortSignal.timeout(30_000)])
    : AbortSignal.timeout(30_000);
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form.toString(),
      redirect: "error",
      signal: bounded,
    });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new CloudCredentialsError({
      provider: "azure",
      host,
      reason: `ACR token exchange failed (${describeCause(err)})`,
    });
  }
  const text = await readBounded(res);
  if (!res.ok) {
    throw new CloudCredentialsError({
      provider: "azure",
      host,
      reason: `ACR token exchange answered HTTP ${res.status}`,
    });
  }
  try {
    const doc = JSON.parse(text) as { refresh_token?: unknown };
    if (typeof doc.refresh_token === "string" && doc.refresh_token !== "") return doc.refresh_token;
  } catch {
    // reported below
  }
  throw new CloudCredentialsError({
    provider: "azure",
    host,
    reason: "ACR token exchange answer has no refresh_token",
  });
}

async function readBounded(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ANSWER) {
      await reader.cancel();
      break;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The claims of a JWT, unverified: only its expiry and tenant are read. */
function jwtClaims(token: string): { exp?: number; tid?: string } | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    const doc: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    if (typeof doc !== "object" || doc === null) return undefined;
    const d = doc as Record<string, unknown>;
    const claims: { exp?: number; tid?: string } = {};
    if (typeof d.exp === "number") claims.exp = d.exp;
    if (typeof d.tid === "string") claims.tid = d.tid;
    return claims;
  } catch {
    return undefined;
  }
}

/** Options of the Azure provider `Credentials.resolve` asks. */
export interface AzureProviderOptions extends AcrOptions {
  logger?: CredentialsLogger | undefined;
}

/** The Azure cloud provider; a failure is logged and the host is tried anonymously. */
export function azureCloudProvider(opts: AzureProviderOptions = {}): CloudCredentialProvider {
  return anonymousOnFailure({
    name: "azure",
    cloud: "Azure",
    matches: isAzureRegistryHost,
    source: new AcrTokenSource(opts),
    logger: opts.logger,
  });
}
