/**
 * An API thread on its own, for the tests of the thread itself (api-thread.test.ts,
 * warmer-priority.test.ts): an sqlite store, no watched repository, and a warmer that
 * answers nothing (or the given one).
 */
import type { Logger } from "pino";
import { Registry as PromRegistry } from "prom-client";
import { configSchema } from "../../src/config/schema.js";
import { ApiThread, type ApiThreadOptions } from "../../src/daemon/api-thread.js";
import { WatchList } from "../../src/daemon/watch-list.js";
import type { WarmerControl } from "../../src/server/warmer-control.js";
import { waitFor } from "../support/wait-for.js";

export const idleControl: WarmerControl = {
  statuses: async () => [],
  isWatched: async () => false,
  requestRefresh: () => "started",
  subscribe: () => () => {},
};

/** Starts a thread on a free loopback port over the sqlite store at `dbPath`. */
export function startBareApiThread(
  dbPath: string,
  logger: Logger,
  startThread?: ApiThreadOptions["startThread"],
  control: WarmerControl = idleControl,
): Promise<ApiThread> {
  return ApiThread.start({
    config: configSchema.parse({ listen: "127.0.0.1:0", cache: `sqlite:${dbPath}` }),
    env: {},
    logger,
    control,
    watch: new WatchList(async () => new Map()),
    warmer: { onScan: () => () => {}, repositoryStatus: () => undefined },
    metrics: new PromRegistry(),
    startThread,
  });
}

/** Resolves once `url` answers 200 again (a crashed thread restarted), within 15 s. */
export async function servingAgain(url: string): Promise<void> {
  await waitFor(
    async () => {
      try {
        return (await fetch(url)).status === 200;
      } catch {
        return false;
      }
    },
    { what: "the API thread to serve again", timeoutMs: 15_000 },
  );
}
