/**
 * `regscan serve`'s HTTP API as the configuration makes it, on whichever thread serves it:
 * the warmer's (a store in this process's memory) or a thread of its own
 * (src/daemon/api-thread-worker.ts). Both build it here, so the two cannot drift apart.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import { Cache, type RepositoryStreamOptions } from "../cache/cache.js";
import { timestampLabelDecorator } from "../cache/decorators.js";
import { Keys } from "../cache/keys.js";
import { isProcessLocalStore, isRedisStore } from "../cache/open-store.js";
import type { RepositoryRecord } from "../cache/records.js";
import type { Store } from "../cache/store.js";
import type { Config } from "../config/schema.js";
import { instrumentRegistry } from "../registry/instrument.js";
import { ApiServer } from "../server/api-server.js";
import {
  type RecordNoticeSource,
  recordNoticeChannel,
  redisRecordNotices,
} from "../server/record-notices.js";
import { SharedAnswers } from "../server/shared-answers.js";
import type { WarmerControl } from "../server/warmer-control.js";
import { WebhookEndpoint, type WebhookSink } from "../server/webhook-endpoint.js";
import { WebhookReceivers } from "../server/webhooks/receivers.js";

/**
 * What identifies one state of a repository record: the warmer rewrites the record after
 * every scan that could have changed a tag, so the API's cached JSON of the repository is
 * good exactly as long as this stays the same. The write's time is part of it: a check of
 * pushed tags without a listing keeps every other mark, and a moved tag's answer stayed the
 * old one until the repository's next listing (bench:scale at 2,000,000 tags: webhooks p50
 * 11.6 s where the tag's event came after 1.2 s).
 */
function repositoryRecordVersion(record: RepositoryRecord): string {
  return [
    record.writtenAt?.getTime(),
    record.lastScanned?.getTime(),
    record.lastUpdate?.getTime(),
    record.lastError?.at.getTime(),
    record.scannedBy,
    record.tags?.length,
  ].join("|");
}

/** The cache the API reads (with the configured label decorators). */
export function apiCache(opts: {
  config: Config;
  store: Store;
  /** Where the cache's read durations go. */
  metrics: MetricsRegistry;
  logger: Logger;
}): Cache {
  return new Cache({
    store: opts.store,
    decorators: [timestampLabelDecorator(opts.config.timestampLabels)],
    metricsRegistry: opts.metrics,
    logger: opts.logger,
  });
}

/** What {@link createApiServer} builds the server from. */
export interface ApiServerParts {
  config: Config;
  /** The API's reads (see {@link apiCache}), and `/readyz`'s store. */
  cache: Cache;
  store: Store;
  warmer: WarmerControl;
  webhooks?: WebhookEndpoint | undefined;
  metrics: MetricsRegistry;
  /** The daemon's logger (the server logs as its `api` component). */
  logger: Logger;
}

/** The API server, not yet listening. */
export function createApiServer(parts: ApiServerParts): ApiServer {
  const { config, cache, store, metrics, logger } = parts;
  const registry = instrumentRegistry(cache, metrics);
  return new ApiServer({
    registry,
    warmer: parts.warmer,
    webhooks: parts.webhooks,
    repositoryState: async (name, signal) => {
      const record = await cache.repositoryRecord(name, { signal });
      if (!record) return undefined;
      // Through the instrumented registry (its timing), which hands the options on as
      // given: the Cache opens the stream from this record. Once only: the state is shared
      // for a second, and a reader of thousands of repositories a second would keep each
      // one's tag list that long; a second build reads the record.
      let held: RepositoryRecord | undefined = record;
      const open = (openSignal: AbortSignal) => {
        const opts: RepositoryStreamOptions = { signal: openSignal, record: held };
        held = undefined;
        return (
          registry.streamImageRepository?.(name, opts) ?? cache.streamImageRepository(name, opts)
        );
      };
      return {
        version: repositoryRecordVersion(record),
        lastUpdate: record.lastUpdate,
        tags: record.tags?.length,
        open,
        release: () => {
          held = undefined;
        },
      };
    },
    sharedAnswers: sharedAnswers(parts),
    recordNotices: recordNotices(parts),
    limits: {
      maxConnections: config.server.maxConnections,
      maxConnectionsPerClient: config.server.maxConnectionsPerClient,
      heavyConcurrency: config.server.maxHeavyRequests,
    },
    metrics,
    logger: logger.child({ component: "api" }),
    ready: (signal) => store.ping({ signal }),
    apiToken: config.apiToken,
    maxBodyBytes: config.server.maxBodyBytes,
    rateLimit: config.server.rateLimit,
  });
}

/**
 * The answers shared through the store, unless configured off or the store lives in this
 * process's memory (nobody else reads it, and its answer cache is the replica's own).
 */
function sharedAnswers(parts: ApiServerParts): SharedAnswers | undefined {
  const { config } = parts;
  if (!config.server.sharedAnswers || isProcessLocalStore(config.cache)) return undefined;
  // What shapes an answer besides the store's records: the label decorators configured.
  const variant = createHash("sha256")
    .update(JSON.stringify({ timestampLabels: config.timestampLabels }))
    .digest("base64url")
    .slice(0, 16);
  return new SharedAnswers({
    store: parts.store,
    variant,
    metrics: parts.metrics,
    logger: parts.logger.child({ component: "api" }),
  });
}

/**
 * Notices of record writes on a Redis store (every replica publishes its own: see
 * record-notice-publisher.ts), on a connection of the API's own.
 */
function recordNotices(parts: ApiServerParts): RecordNoticeSource | undefined {
  if (!isRedisStore(parts.store)) return undefined;
  return redisRecordNotices(
    parts.store.duplicateConnection(5_000),
    recordNoticeChannel(new Keys().prefix),
    parts.logger.child({ component: "api" }),
  );
}

/**
 * The webhook routes, when receivers are configured: their secrets are read now (a missing
 * one stops start-up), and the events they accept go to `sink` (the refresher).
 */
export async function webhookEndpoint(opts: {
  config: Config;
  env: NodeJS.ProcessEnv;
  sink: WebhookSink;
  metrics: MetricsRegistry;
  logger: Logger;
}): Promise<WebhookEndpoint | undefined> {
  const { config, env, sink, metrics } = opts;
  if (!config.webhooks) return undefined;
  const receivers = await WebhookReceivers.create(config.webhooks, { env });
  if (receivers.kinds().length === 0) return undefined;
  const logger = opts.logger.child({ component: "webhooks" });
  logger.info({ receivers: receivers.kinds() }, "webhook receivers on");
  return new WebhookEndpoint({ receivers, sink, metrics, logger });
}
