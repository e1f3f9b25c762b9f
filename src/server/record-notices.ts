/**
 * Notices that a repository's record was written, shared by every replica on a Redis store
 * through one pub/sub channel: each replica publishes after its scans write a record, and
 * each replica's API forgets the stored state it read of that repository. While the channel
 * is subscribed, the API may share a state for longer than a second (a kept answer then
 * costs no store round trip); when it is not (never subscribed yet, or the connection
 * dropped and notices may have been missed), it goes back to reading each second.
 */
import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";

/** What the API learns of record writes: each one, and when notices may have been missed. */
export interface RecordNoticeListener {
  /** `repository`'s record was written (by any replica). */
  written(repository: string): void;
  /** Notices may have been missed (the channel was subscribed again): forget every state. */
  reset(): void;
}

/** Where the API gets notices of record writes from. */
export interface RecordNoticeSource {
  /** True while notices arrive (the channel is subscribed now). */
  live(): boolean;
  /** Calls `listener` from now on, until the returned function is called. */
  subscribe(listener: RecordNoticeListener): () => void;
  /** Stops listening and closes the connection. */
  close(): void;
}

/** The channel of a key prefix (notices of one namespace only). */
export function recordNoticeChannel(prefix: string): string {
  return `${prefix}written`;
}

/**
 * Subscribes `connection` (a connection of its own: a subscribed Redis connection takes no
 * other command) to `channel`. ioredis subscribes again after a reconnection; notices
 * published meanwhile are lost, so the listeners are told to forget everything then.
 */
export function redisRecordNotices(
  connection: Redis | Cluster,
  channel: string,
  logger: Logger,
): RecordNoticeSource {
  const listeners = new Set<RecordNoticeListener>();
  let subscribed = false;
  let closed = false;
  const subscribe = () => {
    connection.subscribe(channel).then(
      () => {
        if (closed) return;
        // Whatever was written while unsubscribed went unnoticed.
        if (!subscribed) for (const l of listeners) l.reset();
        subscribed = true;
      },
      (err: Error) => {
        if (!closed)
          logger.warn({ err: { message: err.message } }, "record notices: not subscribed");
      },
    );
  };
  connection.on("message", (from: string, message: string) => {
    if (from !== channel) return;
    for (const l of listeners) l.written(message);
  });
  // A dropped connection may lose notices until it is subscribed again (ioredis does that
  // itself on reconnecting, `autoResubscribe`): states are read each second meanwhile.
  connection.on("close", () => {
    subscribed = false;
  });
  connection.on("ready", () => {
    if (!subscribed && !closed) subscribe();
  });
  connection.on("error", () => {});
  subscribe();
  return {
    live: () => subscribed,
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    close() {
      closed = true;
      subscribed = false;
      listeners.clear();
      connection.disconnect();
    },
  };
}

/**
 * Publishes that `repository`'s record was written. Never rejects: a notice that does not
 * go out is logged at debug level (readers then see the write within the states' longer
 * sharing time, not the second).
 */
export async function publishRecordNotice(
  connection: Redis | Cluster,
  channel: string,
  repository: string,
  logger: Logger,
): Promise<void> {
  try {
    await connection.publish(channel, repository);
  } catch (err) {
    logger.debug(
      { err: { message: (err as Error).message }, repository },
      "record notice not sent",
    );
  }
}
