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
import {
  aroundClientCalls,
  type Client,
  type ClientFactory,
  type ClientOptions,
} from "../registry/client.js";
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
      return aroundClientCalls(client, async (_call, o, run) => {
        const wait = brake.pass({ signal: o?.signal, bypass });
        if (wait !== undefined) await wait;
        return run();
      });
    },
    succeed: (name: ImageName) => factory.succeed(name),
  };
  const conditions = factory.hostConditions?.bind(factory);
  if (conditions) braked.hostConditions = (name: ImageName) => conditions(name);
  return braked;
}
