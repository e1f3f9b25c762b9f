/**
 * regscan's library API, the package root (`import ... from "regscan"`): what a library user
 * needs to read registries and keep a cache. The daemon is `regscan/daemon`, the store
 * classes `regscan/stores/*`. Importing this loads no store driver, YAML parser, prom-client
 * or cloud SDK: each is loaded when a feature first needs it (test/package/lazy-entry.test.ts).
 * Exports are sorted by module (the linter's order): image references, types and JSON forms;
 * registry clients, factory, credentials, rate limits and instrumentation (the metric classes
 * as types only: pass a prom-client Registry); the cache, warmer and `openStore` (store
 * classes in `regscan/stores/*`); and every error class, each with a stable `code`.
 */

export type { OperationOptions } from "./abort.js";
export type { StretchPeers } from "./cache/budget-stretch.js";
export {
  Cache,
  type CachedTag,
  type CacheOptions,
  type RepositoryStreamOptions,
  type RepositorySummary,
} from "./cache/cache.js";
export { type Decorator, timestampLabelDecorator } from "./cache/decorators.js";
export {
  CachedFetchError,
  ImageExcludedError,
  NoImageDataError,
  NotCachedError,
  StoreWriteError,
  TagFetchError,
  UnknownDigestError,
  UnknownTagError,
  WarmerRunningError,
} from "./cache/errors.js";
export { DEFAULT_KEY_PREFIX, Keys } from "./cache/keys.js";
export type { LoopBrakeOptions } from "./cache/loop-brake.js";
export {
  defaultStoreUrl,
  type OpenStoreOptions,
  openStore,
  redact as redactStoreUrl,
} from "./cache/open-store.js";
export {
  EXCLUDED_REFRESH_MS,
  INITIAL_REFRESH_MS,
  MAX_REFRESH_MS,
  MIN_REFRESH_MS,
  nextRefreshInterval,
} from "./cache/refresh-policy.js";
export { LeaseLostError } from "./cache/repository-lease.js";
export type { SetOptions, Store, StoreEntry } from "./cache/store.js";
export {
  InvalidDeadlineError,
  InvalidStoreUrlError,
  StoreClosedError,
  StoreOperationError,
  StoreUnavailableError,
  ValueTooLargeError,
} from "./cache/stores/errors.js";
export { MemoryStore, type MemoryStoreOptions } from "./cache/stores/memory.js";
export type { StoreLogger } from "./cache/stores/options.js";
export type { TagEventListener } from "./cache/tag-events.js";
export {
  compileTagFilter,
  filterTags,
  InvalidTagFilterError,
  type TagFilterOptions,
} from "./cache/tag-filter.js";
export {
  DEFAULT_BURST,
  DEFAULT_INTERVAL_MS,
  type ScanOptions,
  type ScanTarget,
  Warmer,
  type WarmerOptions,
} from "./cache/warmer.js";
export type {
  ErrorSummary,
  RepositoryOptions,
  RepositoryScanResult,
  RepositoryStatus,
  ScanOutcome,
  TagEvent,
} from "./cache/warmer-types.js";
export { RegscanError, type RegscanErrorCode } from "./errors.js";
export type { ImageEntry, ImageInfo, Labels, Platform, RepositoryMetadata } from "./image/info.js";
export {
  type ImageEntryJSON,
  type ImageInfoJSON,
  InvalidImageDataError,
  imageEntryFromJSON,
  imageEntryToJSON,
  imageInfoFromJSON,
  imageInfoToJSON,
  type PlatformJSON,
  type RepositoryMetadataJSON,
  repositoryMetadataFromJSON,
  repositoryMetadataToJSON,
} from "./image/json.js";
export {
  bestCreationTime,
  findLabelTimestamp,
  type ImageLabelTimestamp,
  LABEL_SCHEMA_BUILD_DATE_LABEL,
  LABEL_TIMESTAMP_PRIORITY,
  LabelTimestampFormatError,
  OCI_CREATED_LABEL,
  preferLabelTimestamps,
  readLabelTimestamps,
  type TimestampSource,
} from "./image/label-timestamps.js";
export {
  compareBySemverDesc,
  compareNewestFirst,
  compareTagsBySemverDesc,
  sortBySemverDesc,
  sortNewestFirst,
  sortTagsBySemverDesc,
} from "./image/ordering.js";
export {
  ImageName,
  ImageRef,
  InvalidImageRefError,
  parseImageName,
  parseImageRef,
} from "./image/ref.js";
export { MissingDependencyError } from "./optional-dependency.js";
export type { Client, ClientFactory, ClientOptions, ManifestHead } from "./registry/client.js";
export {
  type AWSAuth,
  type AWSRegistryConfig,
  EKS_SYSTEM_ACCOUNT,
  EKS_SYSTEM_ACCOUNT_CN,
  imageCredsWithAWSAuth,
} from "./registry/credentials/aws-image-creds.js";
export {
  ACR_REFRESH_TOKEN_USERNAME,
  azureCloudProvider,
} from "./registry/credentials/azure.js";
export {
  type CloudProvidersOptions,
  defaultCloudProviders,
  sharedCloudProviders,
} from "./registry/credentials/cloud-providers.js";
export {
  type CredentialHelperOptions,
  CredentialHelperRunner,
} from "./registry/credentials/credential-helper.js";
export {
  Credentials,
  type CredentialsOptions,
  type HostCredential,
} from "./registry/credentials/credentials.js";
export { ecrCloudProvider } from "./registry/credentials/ecr.js";
export {
  CloudCredentialsError,
  CredentialHelperError,
  CredentialsFileError,
} from "./registry/credentials/errors.js";
export {
  GCP_TOKEN_USERNAME,
  gcpCloudProvider,
  getGCPOAuthToken,
} from "./registry/credentials/gcp.js";
export {
  type ImageCreds,
  type ImageCredsLookup,
  imageCredsWithCloudProviders,
  imageCredsWithDefaults,
  readDockerConfigFile,
} from "./registry/credentials/image-creds.js";
export { findPullSecretFiles, loadPullSecrets } from "./registry/credentials/pull-secrets.js";
export type {
  CloudCredentialProvider,
  CredentialsLogger,
} from "./registry/credentials/types.js";
export {
  ClientClosedError,
  DeniedError,
  DigestMismatchError,
  InvalidImageConfigError,
  InvalidManifestError,
  InvalidResponseError,
  ManifestUnknownError,
  NameUnknownError,
  NetworkError,
  RegistryError,
  RegistryResponseError,
  TagListError,
  TimeoutError,
  TooLargeError,
  TooManyRequestsError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from "./registry/errors.js";
export { RemoteClientFactory, type RemoteClientFactoryOptions } from "./registry/factory.js";
export {
  DEFAULT_BUDGETS,
  type HostBudget,
  InvalidBudgetError,
  type RequestBudget,
} from "./registry/http/budgets.js";
export type { ObservedRequest, ResponseObserver } from "./registry/http/observe.js";
export type { PullState } from "./registry/http/pull-budget.js";
export {
  type Clock,
  type HostRateState,
  type HostSaturation,
  RateLimiters,
  type RateLimitersOptions,
} from "./registry/http/rate-limiters.js";
export { isRetryable, type RetryOptions } from "./registry/http/retry.js";
export {
  type ClientMetrics,
  type HttpMetrics,
  instrumentClient,
  instrumentRegistry,
  LabelRequestKind,
  type RegistryMetrics,
  RequestKindMetadata,
  RequestKindTags,
} from "./registry/instrument.js";
export {
  DEFAULT_PLATFORM,
  formatPlatform,
  InvalidPlatformError,
  parsePlatform,
} from "./registry/manifest/platform.js";
export { MirroredClientFactory } from "./registry/mirrored-client-factory.js";
export type { Registry } from "./registry/registry.js";
export type { RemoteClient } from "./registry/remote-client.js";
export type { RepositoryStream, TaggedImage } from "./registry/repository-stream.js";
