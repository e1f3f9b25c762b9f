/**
 * Where the API's event streams get tag events from: this warmer alone (memory, sqlite,
 * memcached: a replica shows the changes its own scans found), or, on a Redis store, the
 * Redis stream every replica appends to (every replica shows every change, once, with ids
 * a reconnecting client can resume from).
 */
import type { Logger } from "pino";
import { isRedisStore } from "../cache/open-store.js";
import type { Store } from "../cache/store.js";
import type { Warmer } from "../cache/warmer.js";
import type { TagEvent } from "../cache/warmer-types.js";
import { RedisTagEvents } from "../server/redis-events.js";
import type { ReplayedEvent } from "../server/warmer-control.js";

/** Tag events as the API's streams take them. */
export interface TagEventFeed {
  subscribe(listener: (event: TagEvent, id?: string) => void): () => void;
  replay?(lastEventId: string, signal: AbortSignal): Promise<ReplayedEvent[] | undefined>;
  /** Stops reading and closes what the feed opened. */
  close(): void;
}

/** The warmer's own events. */
export function localTagEventFeed(warmer: Warmer): TagEventFeed {
  return {
    subscribe: (listener) => warmer.onTagEvent((event) => listener(event)),
    close: () => {},
  };
}

/** Longest XREAD block; the connection's command timeout is this plus a margin. */
const BLOCK_MS = 5_000;

/** What {@link tagEventFeed} reads from. */
export interface TagEventFeedOptions {
  store: Store;
  warmer: Warmer;
  /** This replica's id, stamped on the events it appends to the shared stream. */
  replica: string;
  logger: Logger;
}

/**
 * The shared feed when `store` is a Redis store, else the warmer's own. The warmer's events
 * are appended to the stream; one Redis can not take is still shown by this replica.
 */
export function tagEventFeed(opts: TagEventFeedOptions): TagEventFeed {
  const { store, warmer, replica, logger } = opts;
  if (!isRedisStore(store)) return localTagEventFeed(warmer);
  const reader = store.duplicateConnection(BLOCK_MS + 5_000);
  const writer = store.duplicateConnection(5_000);
  // Connection errors are reported by the commands that fail (logged there, rate-bounded).
  reader.on("error", () => {});
  writer.on("error", () => {});
  const shared = new RedisTagEvents({ reader, writer, replica, logger, blockMs: BLOCK_MS });
  const unpublished = new Set<(event: TagEvent) => void>();
  const stopPublishing = warmer.onTagEvent((event) => {
    void shared.publish(event).then((id) => {
      if (id === undefined) for (const listener of unpublished) listener(event);
    });
  });
  const running = new AbortController();
  void shared.run(running.signal);
  return {
    subscribe(listener) {
      const own = (event: TagEvent) => listener(event);
      unpublished.add(own);
      const unsubscribe = shared.subscribe(({ id, event }) => listener(event, id));
      return () => {
        unpublished.delete(own);
        unsubscribe();
      };
    },
    async replay(lastEventId, signal) {
      try {
        return await shared.replay(lastEventId, signal);
      } catch (err) {
        logger.debug(
          { err: { message: (err as Error).message } },
          "could not replay missed events",
        );
        return undefined;
      }
    },
    close() {
      stopPublishing();
      running.abort();
      reader.disconnect();
      writer.disconnect();
    },
  };
}
