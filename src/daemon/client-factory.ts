/**
 * The daemon's client factory: the library's `RemoteClientFactory` configured from the
 * `registry` section, every client instrumented (`regscan_client_fetch_duration_seconds`),
 * and the configured mirrors in front of their registries.
 */
import type { Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import type { LoopBrake } from "../cache/loop-brake.js";
import type { Config } from "../config/schema.js";
import type { ImageName } from "../image/ref.js";
import type { Client, ClientFactory, ClientOptions } from "../registry/client.js";
import type { Credentials } from "../registry/credentials/credentials.js";
import { RemoteClientFactory } from "../registry/factory.js";
import type { RateLimiters } from "../registry/http/rate-limiters.js";
import { ClientMetrics, instrumentClient } from "../registry/instrument.js";
import { MirroredClientFactory } from "../registry/mirrored-client-factory.js";

/** A factory and the function that releases its connections. */
export interface DaemonClientFactory {
  factory: ClientFactory;
  /** The per-host request budgets every client spends (the replica census sets its share). */
  limiters: RateLimiters;
  close(): Promise<void>;
}

/** Makes the factory the warmer uses. */
export function createClientFactory(
  config: Config,
  logger: Logger,
  metrics: MetricsRegistry,
): DaemonClientFactory {
  const remote = new RemoteClientFactory({
    logger: logger.child({ component: "registry" }),
    limiters: {
      rps: config.registry.rps,
      burst: config.registry.burst,
      budgets: config.registry.budgets,
    },
    trace: config.registry.trace,
    insecureHosts: config.registry.insecureHosts,
    caFiles: config.registry.caFiles,
    requestTimeoutMs: config.registry.requestTimeout,
    tagListTimeoutMs: config.registry.tagListTimeout,
    metrics,
    platform: config.registry.platform,
  });
  const clientMetrics = new ClientMetrics(metrics);
  const instrumented: ClientFactory = {
    clientFor: (name: ImageName, creds: Credentials, opts?: ClientOptions): Client =>
      instrumentClient(remote.clientFor(name, creds, opts), clientMetrics),
    succeed: (name: ImageName) => remote.succeed(name),
    hostConditions: (name: ImageName) => remote.hostConditions(name),
  };
  const factory =
    Object.keys(config.registry.mirrors).length > 0
      ? new MirroredClientFactory(
          instrumented,
          config.registry.mirrors,
          ({ registry, mirror, error }) =>
            logger.warn(
              { registry, mirror, err: { message: (error as Error).message } },
              "mirror failed; asking the next one",
            ),
        )
      : instrumented;
  return { factory, limiters: remote.limiters, close: () => remote.close() };
}

/**
 * `factory` with each registry call of a regular client waiting while `brake` holds
 * (loop-brake.ts: the event loop is busy, bounded): the replica's reads get the loop while
 * the warmer's fill waits a moment, its budget's tokens kept for after. A priority client
 * (webhook, refresh) never waits, nor does a scan once raised to priority.
 */
export function brakeClients(factory: ClientFactory, brake: LoopBrake): ClientFactory {
  const braked: ClientFactory = {
    clientFor: (name: ImageName, creds: Credentials, opts?: ClientOptions): Client => {
      const client = factory.clientFor(name, creds, opts);
      if (opts?.priority === true) return client;
      const bypass = opts?.priority === false ? undefined : opts?.priority;
      const turn = async (signal: AbortSignal | undefined) => {
        const wait = brake.pass({ signal, bypass });
        if (wait !== undefined) await wait;
      };
      const out: Client = {
        tags: async (o) => {
          await turn(o?.signal);
          return client.tags(o);
        },
        manifest: async (reference, o) => {
          await turn(o?.signal);
          return client.manifest(reference, o);
        },
        head: async (reference, o) => {
          await turn(o?.signal);
          return client.head(reference, o);
        },
      };
      const fetchTag = client.fetchTag?.bind(client);
      if (fetchTag) {
        out.fetchTag = async (tag, o) => {
          await turn(o?.signal);
          return fetchTag(tag, o);
        };
      }
      return out;
    },
    succeed: (name: ImageName) => factory.succeed(name),
  };
  const conditions = factory.hostConditions?.bind(factory);
  if (conditions) braked.hostConditions = (name: ImageName) => conditions(name);
  return braked;
}
